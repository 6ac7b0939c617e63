import { existsSync, readFileSync } from 'node:fs';

export interface QaPayload {
  question: string;
  context: string;
}

const words =
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when what if more no out so said can who up about them into time only some could new other than then first its also two after over where most people years'.split(
    ' ',
  );

/** `count` SQuAD v1.1 (question, context) pairs spread over the file, or SQuAD-like generated text without one. */
export function squadPayloads(path: string | undefined, count: number): QaPayload[] {
  if (!path) {
    let seed = 1;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648);
    const sentence = (n: number) => Array.from({ length: n }, () => words[Math.floor(next() * words.length)]).join(' ');
    return Array.from({ length: count }, () => ({ question: `${sentence(9)}?`, context: `${sentence(130)}.` }));
  }
  if (!existsSync(path)) throw new Error(`${path}: dataset file not found`);
  const data = JSON.parse(readFileSync(path, 'utf8')) as {
    data: { paragraphs: { context: string; qas: { question: string }[] }[] }[];
  };
  const all = data.data.flatMap((article) =>
    article.paragraphs.flatMap((p) => p.qas.map((qa) => ({ question: qa.question, context: p.context }))),
  );
  const step = Math.max(1, Math.floor(all.length / count));
  return Array.from({ length: Math.min(count, all.length) }, (_, i) => all[i * step]);
}
