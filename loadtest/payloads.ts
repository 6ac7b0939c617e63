/**
 * Request bodies for the load test, in a fixed seeded order: SQuAD v1.1 (question, context) pairs, GLUE .tsv
 * sentences or pairs, CoNLL-2003 sentences — or, without a dataset file, generated English-like text of similar
 * lengths (SQuAD contexts ~120-150 words, questions ~10 words).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { SeededRandom } from '../conversion/generate/random-checkpoint.js';
import { LoadtestError, type LoadtestTask } from './types.js';

export interface PayloadSet {
  /** JSON bodies, already serialized, in the order they are sent. */
  bodies: string[];
  source: string;
  /** Mean words per field (context/question, or text/text_pair), to show what the load looked like. */
  meanWords: Record<string, number>;
}

/** The project's seeded generator (mulberry32), so the same seed gives the same order on every machine. */
export function seededRandom(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.uniform();
}

export function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const wordCount = (text: string) => text.split(/\s+/).filter(Boolean).length;

const common = (
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her she there been one all we their has would when what if more no out so said can who up about them ' +
  'into time only some could new other than then first its also two after over where most people years city river ' +
  'century government church school music team army war language company system period building population ' +
  'students university state water energy field force group series title game power line number part history ' +
  'during between while under against within several early later major large small local national modern ancient'
).split(' ');
const names = (
  'London Paris Warsaw Zurich Geneva Denver Chicago Tesla Newton Einstein Victoria Normandy Luther Huguenot ' +
  'Amazon Rhine Kenya Jacksonville Southern California Oxford Harvard Broncos Panthers Apple Siemens Reuters'
).split(' ');
const questionWords = ['What', 'Which', 'When', 'Where', 'Who', 'How many', 'Why', 'In what year'];

function sentence(random: () => number, words: number, nameRate: number): string {
  const pick = (list: string[]) => list[Math.floor(random() * list.length)];
  const parts = Array.from({ length: words }, () => (random() < nameRate ? pick(names) : pick(common)));
  parts[0] = parts[0][0].toUpperCase() + parts[0].slice(1);
  return `${parts.join(' ')}.`;
}

const between = (random: () => number, low: number, high: number) => low + Math.floor(random() * (high - low + 1));

/** English-like text of `words` words (sentences of 8-22 words). */
function paragraph(random: () => number, words: number, nameRate: number): string {
  const sentences: string[] = [];
  let left = words;
  while (left > 0) {
    const n = Math.min(left, between(random, 8, 22));
    sentences.push(sentence(random, n, nameRate));
    left -= n;
  }
  return sentences.join(' ');
}

export function generatedPayloads(task: LoadtestTask, count: number, seed: number): PayloadSet {
  const random = seededRandom(seed);
  const records: Record<string, string>[] = [];
  for (let i = 0; i < count; i++) {
    if (task === 'qa') {
      const question = `${questionWords[Math.floor(random() * questionWords.length)]} ${paragraph(
        random,
        between(random, 8, 10),
        0.1,
      )
        .replace(/\.$/, '')
        .toLowerCase()}?`;
      records.push({ question, context: paragraph(random, between(random, 120, 150), 0.05) });
    } else if (task === 'classify') records.push({ text: paragraph(random, between(random, 6, 30), 0.02) });
    else records.push({ text: paragraph(random, between(random, 8, 30), 0.15) });
  }
  return toPayloadSet(records, `generated English-like text (seed ${seed})`);
}

function toPayloadSet(records: Record<string, string>[], source: string): PayloadSet {
  const meanWords: Record<string, number> = {};
  for (const key of Object.keys(records[0] ?? {})) {
    const total = records.reduce((sum, record) => sum + wordCount(record[key] ?? ''), 0);
    meanWords[key] = Math.round((total / records.length) * 10) / 10;
  }
  return { bodies: records.map((record) => JSON.stringify(record)), source, meanWords };
}

function readDataset(path: string): string {
  if (!existsSync(path)) throw new LoadtestError(`${path}: dataset file not found`);
  if (!statSync(path).isFile()) throw new LoadtestError(`${path}: dataset is not a file`);
  const text = readFileSync(path, 'utf8');
  if (!text.trim()) throw new LoadtestError(`${path}: dataset file is empty`);
  return text;
}

/** SQuAD v1.1/v2.0 JSON: data[].paragraphs[].{context, qas[].question}. */
export function squadRecords(path: string): Record<string, string>[] {
  let json: unknown;
  try {
    json = JSON.parse(readDataset(path));
  } catch (error) {
    if (error instanceof LoadtestError) throw error;
    throw new LoadtestError(`${path}: not a SQuAD JSON file (${(error as Error).message.replace(/\s+/g, ' ')})`);
  }
  const records: Record<string, string>[] = [];
  const articles = (json as { data?: unknown })?.data;
  if (Array.isArray(articles)) {
    for (const article of articles) {
      for (const paragraph of (article as { paragraphs?: unknown[] })?.paragraphs ?? []) {
        const { context, qas } = (paragraph ?? {}) as { context?: unknown; qas?: unknown };
        if (typeof context !== 'string' || !context.trim() || !Array.isArray(qas)) continue;
        for (const qa of qas) {
          const question = (qa as { question?: unknown })?.question;
          if (typeof question === 'string' && question.trim()) records.push({ question, context });
        }
      }
    }
  }
  if (!records.length)
    throw new LoadtestError(`${path}: no SQuAD questions found (expected data[].paragraphs[].qas[].question)`);
  return records;
}

const tsvPairs: [string, string][] = [
  ['sentence1', 'sentence2'],
  ['question1', 'question2'],
  ['question', 'sentence'],
  ['premise', 'hypothesis'],
];

/** A GLUE .tsv with a header: `sentence` (SST-2, CoLA) or one of the usual pair columns (MRPC, QQP, QNLI, RTE, MNLI). */
export function glueRecords(path: string): Record<string, string>[] {
  const lines = readDataset(path).split(/\r?\n/);
  const header = lines[0].split('\t').map((cell) => cell.trim().toLowerCase());
  const pair = tsvPairs.find(([a, b]) => header.includes(a) && header.includes(b));
  const columns = pair ?? (header.includes('sentence') ? ['sentence'] : undefined);
  if (!columns)
    throw new LoadtestError(
      `${path}: not a GLUE .tsv (the header needs "sentence" or a pair such as sentence1/sentence2; got "${lines[0].slice(0, 60)}")`,
    );
  const indexes = columns.map((name) => header.indexOf(name));
  const records: Record<string, string>[] = [];
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const cells = line.split('\t');
    const values = indexes.map((index) => cells[index]?.trim() ?? '');
    if (values.some((value) => !value)) continue;
    records.push(values.length === 2 ? { text: values[0], text_pair: values[1] } : { text: values[0] });
  }
  if (!records.length) throw new LoadtestError(`${path}: no rows with ${columns.join(' and ')} under the header`);
  return records;
}

const iobTag = /^(O|[BIES]-\S+)$/;

/** CoNLL-2003: one token per line (word first, IOB NER tag last), blank lines between sentences, -DOCSTART- skipped. */
export function conllRecords(path: string): Record<string, string>[] {
  const lines = readDataset(path).split(/\r?\n/);
  const records: Record<string, string>[] = [];
  let words: string[] = [];
  const flush = () => {
    if (words.length) records.push({ text: words.join(' ') });
    words = [];
  };
  lines.forEach((line, index) => {
    const cells = line.trim().split(/\s+/);
    if (!line.trim()) return flush();
    if (cells[0] === '-DOCSTART-') return flush();
    if (cells.length < 2 || !iobTag.test(cells[cells.length - 1]))
      throw new LoadtestError(`${path}: line ${index + 1} is not CoNLL (expected "word ... tag" with an IOB tag last)`);
    words.push(cells[0]);
  });
  flush();
  if (!records.length) throw new LoadtestError(`${path}: no CoNLL sentences found`);
  return records;
}

const readers: Record<LoadtestTask, (path: string) => Record<string, string>[]> = {
  qa: squadRecords,
  classify: glueRecords,
  ner: conllRecords,
};

/** The dataset's records in a seeded order (at most `limit`), or `generatedCount` generated ones without a file. */
export function loadPayloads(
  task: LoadtestTask,
  dataset: string | undefined,
  seed: number,
  limit = 20_000,
  generatedCount = 500,
): PayloadSet {
  if (!dataset) return generatedPayloads(task, generatedCount, seed);
  const records = shuffled(readers[task](dataset), seededRandom(seed)).slice(0, limit);
  return toPayloadSet(records, `${dataset} (${records.length} records, shuffled with seed ${seed})`);
}
