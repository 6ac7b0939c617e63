import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { basename } from 'node:path';
import { EvalError } from '../errors.js';
import { readDatasetBytes, readDatasetText, splitLines } from './read.js';

/**
 * GLUE classification data: the GLUE distribution's TSV files (header row, tab-separated, no quoting — as the GLUE
 * loaders read them with `quotechar=None`) and the Hugging Face `glue` dataset's parquet files. Columns are found by
 * header name:
 *
 * | task  | TSV (GLUE)                                    | parquet (Hugging Face)             | classes (index order)                   |
 * | ----- | --------------------------------------------- | ---------------------------------- | --------------------------------------- |
 * | SST-2 | sentence, label                               | sentence, label                    | negative, positive                      |
 * | QQP   | question1, question2, is_duplicate            | question1, question2, label        | not_duplicate, duplicate                |
 * | MRPC  | #1 String, #2 String, Quality                 | sentence1, sentence2, label        | not_equivalent, equivalent              |
 * | MNLI  | sentence1, sentence2, gold_label              | premise, hypothesis, label         | entailment, neutral, contradiction      |
 * | QNLI  | question, sentence, label                     | question, sentence, label          | entailment, not_entailment              |
 * | RTE   | sentence1, sentence2, label                   | sentence1, sentence2, label        | entailment, not_entailment              |
 * | WNLI  | sentence1, sentence2, label                   | sentence1, sentence2, label        | not_entailment, entailment              |
 *
 * The class order is the Hugging Face `ClassLabel` order, which is also the label id a model fine-tuned on that
 * dataset uses. A label cell is either the class index (`0`, `1`: SST-2, QQP, MRPC, WNLI, all parquet files) or the
 * class name (`entailment`: MNLI, QNLI, RTE TSVs). Headers that fit several tasks (sentence1/sentence2/label) are told
 * apart by the file's path (`.../rte/dev.tsv`, `mrpc`...) or `glueTask`. MNLI matched and mismatched are two files,
 * evaluated and reported separately (`MNLI-m`, `MNLI-mm` from the file name).
 */

export interface GlueTaskInfo {
  key: string;
  name: string;
  classes: string[];
  /** GLUE reports F1 of class 1 besides accuracy. */
  reportF1: boolean;
}

export const GLUE_TASKS: Record<string, GlueTaskInfo> = {
  sst2: { key: 'sst2', name: 'SST-2', classes: ['negative', 'positive'], reportF1: false },
  qqp: { key: 'qqp', name: 'QQP', classes: ['not_duplicate', 'duplicate'], reportF1: true },
  mrpc: { key: 'mrpc', name: 'MRPC', classes: ['not_equivalent', 'equivalent'], reportF1: true },
  mnli: { key: 'mnli', name: 'MNLI', classes: ['entailment', 'neutral', 'contradiction'], reportF1: false },
  qnli: { key: 'qnli', name: 'QNLI', classes: ['entailment', 'not_entailment'], reportF1: false },
  rte: { key: 'rte', name: 'RTE', classes: ['entailment', 'not_entailment'], reportF1: false },
  wnli: { key: 'wnli', name: 'WNLI', classes: ['not_entailment', 'entailment'], reportF1: false },
};

/** Column names per task: [text, text pair, label], TSV layout first, then the parquet layout. */
const LAYOUTS: Record<string, [string, string | undefined, string][]> = {
  sst2: [['sentence', undefined, 'label']],
  qqp: [
    ['question1', 'question2', 'is_duplicate'],
    ['question1', 'question2', 'label'],
  ],
  mrpc: [
    ['#1 String', '#2 String', 'Quality'],
    ['sentence1', 'sentence2', 'label'],
  ],
  mnli: [
    ['sentence1', 'sentence2', 'gold_label'],
    ['premise', 'hypothesis', 'label'],
  ],
  qnli: [['question', 'sentence', 'label']],
  rte: [['sentence1', 'sentence2', 'label']],
  wnli: [['sentence1', 'sentence2', 'label']],
};

export interface GlueItem {
  text: string;
  textPair?: string;
  /** Index into the task's classes. */
  label: number;
  /** "line 12" (TSV, 1-based, the header is line 1) or "row 7" (parquet, 1-based). */
  where: string;
}

export interface GlueDataset {
  file: string;
  task: GlueTaskInfo;
  /** SST-2, MNLI-m, MNLI-mm, ... */
  name: string;
  items: GlueItem[];
}

function pathHint(path: string): string | undefined {
  const lower = path.toLowerCase().replace(/[-_]/g, '');
  return Object.keys(GLUE_TASKS).find((key) => lower.includes(key));
}

/** The task and its columns for a header; `glueTask` or a task name in the path settle ambiguous headers. */
function detectLayout(
  path: string,
  columns: string[],
  glueTask: string | undefined,
): { task: GlueTaskInfo; text: string; pair?: string; label: string } {
  const has = (name: string | undefined) => name === undefined || columns.includes(name);
  const fits = Object.entries(LAYOUTS).flatMap(([key, layouts]) =>
    layouts.filter(([text, pair, label]) => has(text) && has(pair) && has(label)).map((layout) => ({ key, layout })),
  );
  // A single-sentence layout also fits pair headers that carry a "sentence" column (QNLI); prefer the pair layout.
  const candidates = fits.some((fit) => fit.layout[1] !== undefined) ? fits.filter((fit) => fit.layout[1]) : fits;
  if (glueTask !== undefined) {
    const info = GLUE_TASKS[glueTask];
    if (!info)
      throw new EvalError(path, `unknown GLUE task "${glueTask}" (known: ${Object.keys(GLUE_TASKS).join(', ')})`);
    const chosen = fits.find((fit) => fit.key === glueTask);
    if (!chosen) {
      throw new EvalError(path, `the columns [${columns.join(', ')}] are not a ${info.name} layout`, 'header');
    }
    return { task: info, text: chosen.layout[0], pair: chosen.layout[1], label: chosen.layout[2] };
  }
  const keys = [...new Set(candidates.map((fit) => fit.key))];
  const hint = pathHint(path);
  const key = keys.length === 1 ? keys[0] : keys.find((k) => k === hint);
  if (key === undefined) {
    throw new EvalError(
      path,
      keys.length === 0
        ? `the columns [${columns.join(', ')}] are not a known GLUE layout (SST-2, QQP, MRPC, MNLI, QNLI, RTE, WNLI)`
        : `the columns fit ${keys.map((k) => GLUE_TASKS[k].name).join(', ')}; name the task with --glue-task`,
      'header',
    );
  }
  const chosen = candidates.find((fit) => fit.key === key)!;
  return { task: GLUE_TASKS[key], text: chosen.layout[0], pair: chosen.layout[1], label: chosen.layout[2] };
}

/** A label cell → class index: the index itself or the class name; -1 / "-" (test splits, no consensus) refused. */
function parseLabel(path: string, task: GlueTaskInfo, value: unknown, where: string): number {
  const text = typeof value === 'bigint' ? value.toString() : typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || text.trim() === '') throw new EvalError(path, 'the label is missing', where);
  const cell = text.trim();
  if (/^\d+$/.test(cell) && Number(cell) < task.classes.length) return Number(cell);
  const byName = task.classes.indexOf(cell.toLowerCase());
  if (byName >= 0) return byName;
  const known = task.classes.map((name, i) => `${i}=${name}`).join(', ');
  const hint = cell === '-1' || cell === '-' ? ' (no gold label: a test split, or no annotator consensus)' : '';
  throw new EvalError(path, `label "${cell}" is not a ${task.name} class (${known})${hint}`, where);
}

function datasetName(path: string, task: GlueTaskInfo): string {
  if (task.key !== 'mnli') return task.name;
  const file = basename(path).toLowerCase();
  return file.includes('mismatched') ? 'MNLI-mm' : file.includes('matched') ? 'MNLI-m' : 'MNLI';
}

/** GLUE TSV: the header names the columns; every row must have as many cells as the header. */
export function loadGlueTsv(path: string, glueTask?: string): GlueDataset {
  const lines = splitLines(readDatasetText(path));
  const header = lines[0].split('\t').map((name) => name.trim());
  const layout = detectLayout(path, header, glueTask);
  const column = (name: string) => header.indexOf(name);
  const [textAt, pairAt, labelAt] = [column(layout.text), layout.pair ? column(layout.pair) : -1, column(layout.label)];
  const items: GlueItem[] = [];
  for (let i = 1; i < lines.length; i++) {
    const where = `line ${i + 1}`;
    if (lines[i].trim() === '') continue;
    const cells = lines[i].split('\t');
    if (cells.length !== header.length) {
      throw new EvalError(
        path,
        `${cells.length} tab-separated cells, the header has ${header.length} (malformed or truncated line)`,
        where,
      );
    }
    const item: GlueItem = { text: cells[textAt], label: parseLabel(path, layout.task, cells[labelAt], where), where };
    if (pairAt >= 0) item.textPair = cells[pairAt];
    items.push(item);
  }
  if (items.length === 0) throw new EvalError(path, 'has a header but no examples');
  return { file: path, task: layout.task, name: datasetName(path, layout.task), items };
}

/** Hugging Face parquet (`glue/<task>/<split>-*.parquet`): columns by name, labels are class indices. */
export async function loadGlueParquet(path: string, glueTask?: string): Promise<GlueDataset> {
  readDatasetBytes(path); // missing / empty → a clear error before the parquet reader sees it
  let rows: Record<string, unknown>[];
  let columns: string[];
  try {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    columns = metadata.schema.slice(1).map((element) => element.name);
    rows = (await parquetReadObjects({ file, metadata })) as Record<string, unknown>[];
  } catch (error) {
    throw new EvalError(path, `is not a readable parquet file (corrupt or truncated?): ${(error as Error).message}`);
  }
  const layout = detectLayout(path, columns, glueTask);
  const items = rows.map((row, i) => {
    const where = `row ${i + 1}`;
    const text = row[layout.text];
    const pair = layout.pair ? row[layout.pair] : undefined;
    if (typeof text !== 'string') throw new EvalError(path, `"${layout.text}" is not a string`, where);
    if (layout.pair && typeof pair !== 'string') throw new EvalError(path, `"${layout.pair}" is not a string`, where);
    const item: GlueItem = { text, label: parseLabel(path, layout.task, row[layout.label], where), where };
    if (layout.pair) item.textPair = pair as string;
    return item;
  });
  if (items.length === 0) throw new EvalError(path, 'has no rows');
  return { file: path, task: layout.task, name: datasetName(path, layout.task), items };
}
