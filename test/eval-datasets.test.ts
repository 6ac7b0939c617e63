/*
 * Dataset readers of the evaluation: SQuAD v1.1 JSON, GLUE TSV / Hugging Face parquet, CoNLL-2003 text. Good files
 * parse into items; malformed, truncated or empty ones fail with a message naming the file and the line (or JSON
 * path / parquet row).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConll } from '../eval/datasets/conll.js';
import { loadGlueParquet, loadGlueTsv } from '../eval/datasets/glue.js';
import { loadSquad } from '../eval/datasets/squad.js';
import { EvalError } from '../eval/errors.js';
import { workspace } from './helpers/workspace.js';

const dir = workspace('eval-datasets');
const sharedData = join(import.meta.dirname, '..', '..', 'shared', 'data');

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Asserts an EvalError whose message names the file and matches `pattern`. */
function fails(work: () => unknown, path: string, pattern: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof EvalError, `expected EvalError, got ${String(error)}`);
    assert.ok(error.message.startsWith(path), `names the file: ${error.message}`);
    assert.match(error.message, pattern);
    return true;
  });
}

const squad = {
  version: '1.1',
  data: [
    {
      title: 'T',
      paragraphs: [
        {
          context: 'The museum is in Zurich.',
          qas: [
            {
              id: 'a',
              question: 'Where?',
              answers: [
                { text: 'Zurich', answer_start: 17 },
                { text: 'in Zurich', answer_start: 14 },
              ],
            },
            { id: 'b', question: 'What?', answers: [{ text: 'The museum', answer_start: 0 }] },
          ],
        },
      ],
    },
  ],
};

test('SQuAD v1.1 JSON: questions with their context and every gold answer', () => {
  const data = loadSquad(file('squad.json', JSON.stringify(squad)));
  assert.equal(data.version, '1.1');
  assert.deepEqual(
    data.items.map((item) => [item.id, item.question, item.answers]),
    [
      ['a', 'Where?', ['Zurich', 'in Zurich']],
      ['b', 'What?', ['The museum']],
    ],
  );
  assert.equal(data.items[0].context, 'The museum is in Zurich.');
});

test('SQuAD JSON: truncated, malformed, empty, missing fields, unanswerable, duplicate ids', () => {
  const text = JSON.stringify(squad, null, 1);
  const truncated = file('truncated.json', text.slice(0, text.length / 2));
  fails(() => loadSquad(truncated), truncated, /not valid JSON \(the file looks truncated\)/);
  const broken = file('broken.json', text.replace('"question": "What?"', '"question": "What?" "x": 1'));
  fails(() => loadSquad(broken), broken, /\(line \d+, column \d+\): is not valid JSON/);
  const empty = file('empty.json', '');
  fails(() => loadSquad(empty), empty, /is empty/);
  const blank = file('blank.json', '  \n');
  fails(() => loadSquad(blank), blank, /is empty/);
  const noAnswers = structuredClone(squad);
  delete (noAnswers.data[0].paragraphs[0].qas[1] as { answers?: unknown }).answers;
  const missing = file('missing.json', JSON.stringify(noAnswers));
  fails(() => loadSquad(missing), missing, /data\[0\]\.paragraphs\[0\]\.qas\[1\]\.answers\): expected an array/);
  const v2 = structuredClone(squad) as unknown as { data: { paragraphs: { qas: Record<string, unknown>[] }[] }[] };
  Object.assign(v2.data[0].paragraphs[0].qas[0], { is_impossible: true, answers: [] });
  const impossible = file('v2.json', JSON.stringify(v2));
  fails(() => loadSquad(impossible), impossible, /qas\[0\]\): question a is unanswerable \(SQuAD v2\.0\)/);
  const dup = structuredClone(squad);
  dup.data[0].paragraphs[0].qas[1].id = 'a';
  const duplicate = file('dup.json', JSON.stringify(dup));
  fails(() => loadSquad(duplicate), duplicate, /duplicate question id "a"/);
  const none = file('none.json', JSON.stringify({ version: '1.1', data: [] }));
  fails(() => loadSquad(none), none, /holds no questions/);
  fails(() => loadSquad(join(dir, 'absent.json')), join(dir, 'absent.json'), /does not exist/);
});

test('GLUE TSV: SST-2, QQP, MNLI matched/mismatched, QNLI and RTE layouts by header names', () => {
  const sst2 = loadGlueTsv(file('sst2.tsv', 'sentence\tlabel\r\nit is good \t1\r\nbad\t0\r\n'));
  assert.equal(sst2.name, 'SST-2');
  assert.deepEqual(sst2.items, [
    { text: 'it is good ', label: 1, where: 'line 2' },
    { text: 'bad', label: 0, where: 'line 3' },
  ]);
  const qqp = loadGlueTsv(
    file('qqp.tsv', 'id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\tq one?\tq two?\t1\n'),
  );
  assert.equal(qqp.task.name, 'QQP');
  assert.equal(qqp.task.reportF1, true);
  assert.deepEqual(qqp.items[0], { text: 'q one?', textPair: 'q two?', label: 1, where: 'line 2' });
  const mnliHeader = 'index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n';
  const matched = loadGlueTsv(
    file('dev_matched.tsv', `${mnliHeader}0\t1\t2\tfiction\tA "quoted" man.\tA man.\tneutral\tneutral\n`),
  );
  assert.equal(matched.name, 'MNLI-m');
  // No quote processing (GLUE reads with quotechar=None): quotes stay in the text.
  assert.deepEqual(matched.items[0], { text: 'A "quoted" man.', textPair: 'A man.', label: 1, where: 'line 2' });
  const mismatched = loadGlueTsv(
    file('dev_mismatched.tsv', `${mnliHeader}0\t1\t2\tx\ta\tb\tcontradiction\tcontradiction\n`),
  );
  assert.equal(mismatched.name, 'MNLI-mm');
  assert.equal(mismatched.items[0].label, 2);
  const qnli = loadGlueTsv(file('qnli.tsv', 'index\tquestion\tsentence\tlabel\n0\tWho?\tHim.\tnot_entailment\n'));
  assert.equal(qnli.task.name, 'QNLI');
  assert.deepEqual(qnli.items[0], { text: 'Who?', textPair: 'Him.', label: 1, where: 'line 2' });
  // sentence1/sentence2/label fits RTE, WNLI and MRPC parquet: the path or --glue-task decides.
  const pairs = 'index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n';
  const ambiguous = file('dev.tsv', pairs);
  fails(() => loadGlueTsv(ambiguous), ambiguous, /\(header\): the columns fit .*name the task with --glue-task/);
  assert.equal(loadGlueTsv(ambiguous, 'rte').task.name, 'RTE');
  assert.equal(loadGlueTsv(file('RTE-dev.tsv', pairs)).task.name, 'RTE');
});

test('GLUE TSV: malformed and truncated lines, unknown labels, empty files fail naming the line', () => {
  const short = file('short.tsv', 'sentence\tlabel\ngood\t1\ntruncated line\n');
  fails(() => loadGlueTsv(short), short, /\(line 3\): 1 tab-separated cells, the header has 2/);
  const unknown = file('unknown.tsv', 'sentence\tlabel\ngood\t1\nodd\t2\n');
  fails(() => loadGlueTsv(unknown), unknown, /\(line 3\): label "2" is not a SST-2 class \(0=negative, 1=positive\)/);
  const test_ = file('test.tsv', 'sentence\tlabel\nno gold\t-1\n');
  fails(() => loadGlueTsv(test_), test_, /\(line 2\): label "-1" .*no gold label/);
  const headerOnly = file('header.tsv', 'sentence\tlabel\n');
  fails(() => loadGlueTsv(headerOnly), headerOnly, /has a header but no examples/);
  const empty = file('empty.tsv', '');
  fails(() => loadGlueTsv(empty), empty, /is empty/);
  const other = file('other.tsv', 'text\tscore\nx\t1\n');
  fails(() => loadGlueTsv(other), other, /\(header\): the columns \[text, score\] are not a known GLUE layout/);
});

test('GLUE parquet: a file that is not parquet fails clearly', async () => {
  const fake = file('fake.parquet', 'sentence\tlabel\nnot parquet\t1\n');
  await assert.rejects(loadGlueParquet(fake), (error: Error) => {
    assert.ok(error instanceof EvalError);
    assert.match(error.message, /fake\.parquet: is not a readable parquet file/);
    return true;
  });
  const empty = file('empty.parquet', '');
  await assert.rejects(loadGlueParquet(empty), /empty\.parquet: is empty/);
});

test('GLUE parquet: the Hugging Face SST-2 train file (../shared/data), and a truncated copy of it', async (t) => {
  const path = join(sharedData, 'glue-sst2', 'train.parquet');
  if (!existsSync(path)) return t.skip(`${path} not present (../shared/data is not part of the repository)`);
  const data = await loadGlueParquet(path);
  assert.equal(data.name, 'SST-2');
  assert.equal(data.items.length, 67349);
  assert.deepEqual(
    [0, 1].map((c) => data.items.filter((item) => item.label === c).length),
    [29780, 37569],
  );
  assert.equal(data.items[0].where, 'row 1');
  const bytes = readFileSync(path);
  const cut = file('cut.parquet', bytes.subarray(0, bytes.length - 100));
  await assert.rejects(loadGlueParquet(cut), /cut\.parquet: is not a readable parquet file/);
});

test('CoNLL-2003 text: sentences between blank lines, -DOCSTART- dropped, last column is the tag', () => {
  const data = loadConll(
    file(
      'ok.txt',
      '-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\n\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER',
    ),
  );
  assert.deepEqual(
    data.sentences.map((s) => [s.words, s.tags, s.lines]),
    [
      [
        ['EU', 'rejects', 'German'],
        ['I-ORG', 'O', 'I-MISC'],
        [3, 4, 5],
      ],
      [
        ['Peter', 'Blackburn'],
        ['B-PER', 'I-PER'],
        [8, 9],
      ],
    ],
  );
  assert.deepEqual(
    [...data.types],
    [
      ['ORG', 3],
      ['MISC', 5],
      ['PER', 8],
    ],
  );
});

test('CoNLL text: truncated lines, bad tags, empty files fail naming the line', () => {
  const cut = file('cut.txt', 'EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ\n');
  fails(() => loadConll(cut), cut, /\(line 3\): 2 columns, earlier lines have 4 \(malformed or truncated line\)/);
  const bad = file('bad.txt', 'EU NNP B-NP B-ORG\nrejects VBZ B-VP X-PER\n');
  fails(() => loadConll(bad), bad, /\(line 2\): "X-PER" is not an IOB\/IOBES tag/);
  const lone = file('lone.txt', 'EU\n');
  fails(() => loadConll(lone), lone, /\(line 1\): "EU" has no tag column/);
  const empty = file('empty.txt', '\n\n');
  fails(() => loadConll(empty), empty, /is empty/);
  const docstart = file('docstart.txt', '-DOCSTART- -X- -X- O\n\n');
  fails(() => loadConll(docstart), docstart, /holds no sentences/);
});
