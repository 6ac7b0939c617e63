/**
 * The inputs of an evaluation, read and checked before any model is loaded: the models' manifests, the task they
 * share, and each dataset file with its selection of items and its task adapter.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Manifest } from '../conversion/manifest.js';
import { loadConll } from './datasets/conll.js';
import { loadGlueParquet, loadGlueTsv } from './datasets/glue.js';
import { loadSquad } from './datasets/squad.js';
import { EvalError } from './errors.js';
import { selectItems } from './select.js';
import {
  conllAdapter,
  glueAdapter,
  manifestTaskToEval,
  squadAdapter,
  type EvalTask,
  type TaskAdapter,
} from './tasks.js';
import type { DatasetInfo, EvalOptions } from './types.js';

const displayTask: Record<EvalTask, string> = { squad: 'SQuAD v1.1', glue: 'GLUE', conll: 'CoNLL-2003' };
const unitOf: Record<EvalTask, string> = { squad: 'questions', glue: 'examples', conll: 'sentences' };

export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path))
    throw new EvalError(dir, 'no manifest.json: not a converted model folder (run "sbs convert" first)');
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (error) {
    throw new EvalError(path, `is not valid JSON: ${(error as Error).message}`);
  }
}

export function resolveTask(requested: EvalTask | undefined, dirs: string[], manifests: Manifest[]): EvalTask {
  const tasks = manifests.map((m) => manifestTaskToEval[m.task]);
  dirs.forEach((dir, i) => {
    if (tasks[i] === undefined) throw new EvalError(dir, `manifest task "${manifests[i].task}" cannot be evaluated`);
    if (requested !== undefined && tasks[i] !== requested) {
      throw new EvalError(
        dir,
        `is a ${manifests[i].task} model; --task ${requested} needs a ${displayTask[requested]} model`,
      );
    }
  });
  const distinct = [...new Set(tasks)];
  if (distinct.length > 1) {
    throw new EvalError(
      dirs.join(', '),
      `the models are of different tasks (${manifests.map((m) => m.task).join(', ')}); evaluate them separately`,
    );
  }
  return requested ?? distinct[0];
}

export interface LoadedData {
  info: Omit<DatasetInfo, 'evaluatedItems' | 'selection' | 'metrics'>;
  adapter: TaskAdapter<unknown>;
  selection: string;
}

export async function loadData(task: EvalTask, file: string, options: EvalOptions): Promise<LoadedData> {
  const ext = extname(file).toLowerCase();
  const describe = (total: number, chosen: number) =>
    options.selection.sample !== undefined && chosen < total
      ? `random ${chosen} of ${total} (seed ${options.selection.seed})`
      : chosen < total
        ? `first ${chosen} of ${total}`
        : `all ${total}`;
  const sha256 = () => (existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : '');
  if (task === 'squad') {
    if (ext === '.tsv' || ext === '.parquet')
      throw new EvalError(file, 'is not SQuAD JSON (question-answering models are evaluated on SQuAD v1.1 JSON)');
    const data = loadSquad(file);
    const items = selectItems(data.items, options.selection);
    return {
      info: {
        name: `SQuAD v${data.version}`,
        file,
        sha256: sha256(),
        totalItems: data.items.length,
        unit: unitOf.squad,
      },
      adapter: squadAdapter(data, items, options.qa) as TaskAdapter<unknown>,
      selection: describe(data.items.length, items.length),
    };
  }
  if (task === 'glue') {
    if (ext !== '.tsv' && ext !== '.parquet') {
      throw new EvalError(
        file,
        'is neither a GLUE .tsv nor a Hugging Face .parquet file (classification models are evaluated on GLUE)',
      );
    }
    const data =
      ext === '.parquet' ? await loadGlueParquet(file, options.glueTask) : loadGlueTsv(file, options.glueTask);
    const items = selectItems(data.items, options.selection);
    return {
      info: { name: data.name, file, sha256: sha256(), totalItems: data.items.length, unit: unitOf.glue },
      adapter: glueAdapter(data, items) as TaskAdapter<unknown>,
      selection: describe(data.items.length, items.length),
    };
  }
  if (ext === '.json' || ext === '.tsv' || ext === '.parquet') {
    throw new EvalError(file, 'is not a CoNLL text file (token-classification models are evaluated on CoNLL-2003)');
  }
  const data = loadConll(file);
  const sentences = selectItems(data.sentences, options.selection);
  // Only the entity types of the selected sentences must be known to the model (first line using each).
  const types = new Map<string, number>();
  for (const sentence of sentences) {
    sentence.tags.forEach((tag, w) => {
      if (tag !== 'O' && !types.has(tag.slice(2))) types.set(tag.slice(2), sentence.lines[w]);
    });
  }
  return {
    info: { name: 'CoNLL-2003', file, sha256: sha256(), totalItems: data.sentences.length, unit: unitOf.conll },
    adapter: conllAdapter({ ...data, types }, sentences, options.aggregation) as TaskAdapter<unknown>,
    selection: describe(data.sentences.length, sentences.length),
  };
}
