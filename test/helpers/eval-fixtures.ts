/** Fixtures of test/eval.test.ts: `sbs eval` run in-process with its output captured, and a small SQuAD file. */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { evalCommand } from '../../src/commands/eval-command.js';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

export async function runEval(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  await evalCommand(args, {}, { stdout, stderr });
  return { stdout: stdout.text, stderr: stderr.text };
}

export const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

export const filler = (words: number) =>
  Array.from({ length: words }, (_, i) => ['the', 'old', 'town', 'river', 'bank', 'museum'][i % 6]).join(' ');

export const squadFixture = {
  version: '1.1',
  data: [
    {
      title: 'Zurich',
      paragraphs: [
        {
          context: 'The museum is in Zurich, by the river.',
          qas: [
            {
              id: 'q1',
              question: 'Where is the museum?',
              answers: [
                { text: 'Zurich', answer_start: 17 },
                { text: 'in Zurich', answer_start: 14 },
              ],
            },
            { id: 'q3', question: 'By what is it?', answers: [{ text: 'the river', answer_start: 29 }] },
          ],
        },
        {
          context: 'Our old town is the city of Zurich.',
          qas: [{ id: 'q2', question: 'Which town?', answers: [{ text: 'the city of Zurich', answer_start: 16 }] }],
        },
        {
          context: `${filler(300)} Zurich.`,
          qas: [
            { id: 'q4', question: 'Which city?', answers: [{ text: 'Zurich', answer_start: filler(300).length + 1 }] },
          ],
        },
      ],
    },
  ],
};
