/**
 * Accuracy evaluation of converted models: every model folder at every requested precision (sparse int8 and dense
 * fp32 by default) over one or more dataset files, through exactly the code the server runs — `loadModelFolder`
 * (manifest + sha256 check, onnxruntime sessions, the batcher) and the task functions of `src/tasks/`.
 *
 * Items are submitted `concurrency` at a time so the batcher forms real batches. While a model runs, its batcher is
 * observed (not replaced): every row the task code submits and the logits the runtime returns for it are kept, so the
 * fidelity of a quantized model against the dense model of the same folder compares the very same rows — share of
 * identical predictions, and mean / max |Δ logit| over every output value of every row (QA start and end logits of
 * every window position, classification logits, NER logits of every token and label).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Manifest } from '../conversion/manifest.js';
import { converterVersion } from '../conversion/version.js';
import type { Batcher } from '../src/batcher/batcher.js';
import type { Precision, ServerConfig } from '../src/config.js';
import { ServerMetrics } from '../src/metrics.js';
import { loadModelFolder, type ServedModel } from '../src/models/registry.js';
import type { RowOutputs } from '../src/runtime/onnx-runner.js';
import type { AggregationStrategy } from '../src/tasks/ner.js';
import { loadConll } from './datasets/conll.js';
import { loadGlueParquet, loadGlueTsv } from './datasets/glue.js';
import { loadSquad } from './datasets/squad.js';
import { EvalError } from './errors.js';
import { mapBounded } from './pool.js';
import { Progress } from './progress.js';
import { selectItems, type Selection } from './select.js';
import {
  conllAdapter,
  glueAdapter,
  manifestTaskToEval,
  squadAdapter,
  type EvalTask,
  type MetricSpec,
  type QaEvalOptions,
  type Scored,
  type TaskAdapter,
} from './tasks.js';

export interface EvalOptions {
  modelDirs: string[];
  dataFiles: string[];
  /** Default: from the models' manifest task. */
  task?: EvalTask;
  /** GLUE task when the header and path do not settle it. */
  glueTask?: string;
  precisions: Precision[];
  selection: Selection;
  /** Items in flight per model. */
  concurrency: number;
  runtime: ServerConfig['runtime'];
  batching: ServerConfig['batching'];
  qa: QaEvalOptions;
  aggregation: AggregationStrategy;
  /** Model name (`<folder>-<precision>`) every model is compared with; default: the fp32 model of its own folder. */
  baseline?: string;
  /** Progress lines; undefined = silent. */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  log?: (line: string) => void;
}

export interface Difference {
  absolute: number;
  /** Percent of the baseline value; null when the baseline is 0. */
  relative: number | null;
}

export interface Fidelity {
  /** The dense model of the same folder, run on the same rows. */
  reference: string;
  items: number;
  identicalItems: number;
  /** Percent of items whose prediction (answer span / label / entity list) equals the reference's. */
  identicalShare: number;
  meanAbsLogitDelta: number;
  maxAbsLogitDelta: number;
  /** Mean |logit| of the reference over the same values: the scale the deltas are to be read against. */
  meanAbsReferenceLogit: number;
  /** Number of logit values compared. */
  logitsCompared: number;
  [extra: string]: number | string;
}

export interface ModelResult extends Scored {
  dataset: string;
  model: string;
  folder: string;
  precision: Precision;
  baseline?: string;
  difference?: Record<string, Difference>;
  fidelity?: Fidelity;
  items: number;
  seconds: number;
  itemsPerSecond: number;
  /** Rows the task code submitted (QA: one per window) and the batches the batcher formed from them. */
  rows: number;
  batches: number;
  meanBatchRows: number;
}

export interface DatasetInfo {
  name: string;
  file: string;
  sha256: string;
  totalItems: number;
  evaluatedItems: number;
  unit: string;
  selection: string;
  metrics: MetricSpec[];
}

export interface ModelInfo {
  name: string;
  folder: string;
  dir: string;
  precision: Precision;
  architecture: string;
  encoderSparsity: number;
  artifactBytes: number;
  labels: string[];
}

export interface EvalReport {
  tool: 'sparse-bert-serve eval';
  version: string;
  createdAt: string;
  /** Written only when every model ran over every selected item. */
  complete: true;
  task: EvalTask;
  settings: Record<string, unknown>;
  datasets: DatasetInfo[];
  models: ModelInfo[];
  results: ModelResult[];
  notes: string[];
}

export interface EvalOutcome {
  report: EvalReport;
  /** Per dataset and model: a predictions file name and its content. */
  predictions: { file: string; content: string }[];
}

const displayTask: Record<EvalTask, string> = { squad: 'SQuAD v1.1', glue: 'GLUE', conll: 'CoNLL-2003' };
const unitOf: Record<EvalTask, string> = { squad: 'questions', glue: 'examples', conll: 'sentences' };

function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path))
    throw new EvalError(dir, 'no manifest.json: not a converted model folder (run "sbs convert" first)');
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (error) {
    throw new EvalError(path, `is not valid JSON: ${(error as Error).message}`);
  }
}

function resolveTask(requested: EvalTask | undefined, dirs: string[], manifests: Manifest[]): EvalTask {
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

interface LoadedData {
  info: Omit<DatasetInfo, 'evaluatedItems' | 'selection' | 'metrics'>;
  adapter: TaskAdapter<unknown>;
  selection: string;
}

async function loadData(task: EvalTask, file: string, options: EvalOptions): Promise<LoadedData> {
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

/** The model with its batcher observed: rows the task code submits and what the runtime returns are recorded. */
function observed(model: ServedModel, sink: RowOutputs[]): ServedModel {
  const batcher: Batcher<RowOutputs> = Object.create(model.batcher);
  batcher.submit = async (rows, signal) => {
    const outputs = await model.batcher.submit(rows, signal);
    sink.push(...outputs);
    return outputs;
  };
  return { ...model, batcher };
}

/** One short and one longer batch per session, so the timed run does not pay onnxruntime's first allocations. */
async function warmUp(model: ServedModel): Promise<void> {
  const { clsId, sepId } = model.tokenizer;
  const row = (length: number) => ({
    ids: [clsId, ...new Array(length - 2).fill(sepId), sepId],
    typeIds: new Array(length).fill(0),
  });
  for (const runner of model.runners) {
    await runner.run([row(16)]);
    await runner.run([row(Math.min(128, model.manifest.maxSequenceLength)), row(64)]);
  }
}

interface Run {
  predictions: unknown[];
  outputs: RowOutputs[][];
  seconds: number;
  rows: number;
  batches: number;
}

/** Rows and batches the model's batcher has run so far (from the same metrics the server exports). */
async function batchTotals(metrics: ServerMetrics, model: string): Promise<{ rows: number; batches: number }> {
  let rows = 0;
  let batches = 0;
  for (const value of (await metrics.batchSize.get()).values) {
    if (value.labels.model !== model) continue;
    if (value.metricName?.endsWith('_sum')) rows = value.value;
    if (value.metricName?.endsWith('_count')) batches = value.value;
  }
  return { rows, batches };
}

async function runModel(
  model: ServedModel,
  data: LoadedData,
  options: EvalOptions,
  metrics: ServerMetrics,
): Promise<Run> {
  await warmUp(model);
  const before = await batchTotals(metrics, model.name);
  const { adapter } = data;
  const outputs: RowOutputs[][] = Array.from({ length: adapter.size }, () => []);
  const progress = new Progress(`${model.name} on ${data.info.name}`, adapter.size, options.progress);
  const predictions = await mapBounded(
    Array.from({ length: adapter.size }, (_, i) => i),
    options.concurrency,
    async (index) => {
      const prediction = await adapter.run(observed(model, outputs[index]), index);
      progress.tick();
      return prediction;
    },
  );
  const seconds = progress.finish();
  const after = await batchTotals(metrics, model.name);
  return { predictions, outputs, seconds, rows: after.rows - before.rows, batches: after.batches - before.batches };
}

function compareLogits(
  test: RowOutputs[][],
  reference: RowOutputs[][],
): { mean: number; max: number; count: number; referenceScale: number } {
  let sum = 0;
  let scale = 0;
  let max = 0;
  let count = 0;
  test.forEach((rows, item) => {
    if (rows.length !== reference[item].length)
      throw new Error(`item ${item}: ${rows.length} rows vs ${reference[item].length} in the reference run`);
    rows.forEach((row, r) => {
      for (const [name, values] of Object.entries(row)) {
        const other = reference[item][r][name];
        if (!other || other.length !== values.length)
          throw new Error(`item ${item}, row ${r}: output ${name} differs in shape from the reference run`);
        for (let i = 0; i < values.length; i++) {
          const delta = Math.abs(values[i] - other[i]);
          sum += delta;
          scale += Math.abs(other[i]);
          if (delta > max) max = delta;
        }
        count += values.length;
      }
    });
  });
  return { mean: count ? sum / count : 0, max, count, referenceScale: count ? scale / count : 0 };
}

function difference(value: number, base: number): Difference {
  return { absolute: value - base, relative: base === 0 ? null : (100 * (value - base)) / Math.abs(base) };
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-|-$/g, '');

/** Runs everything; throws EvalError (bad data, unknown labels, refused item) before any result exists. */
export async function evaluate(options: EvalOptions): Promise<EvalOutcome> {
  const log = options.log ?? (() => {});
  if (options.modelDirs.length === 0) throw new EvalError('eval', 'no model folder given');
  if (options.dataFiles.length === 0) throw new EvalError('eval', 'no dataset file given');
  const manifests = options.modelDirs.map(readManifest);
  const task = resolveTask(options.task, options.modelDirs, manifests);
  const folders = options.modelDirs.map((dir) => basename(dir));
  if (new Set(folders).size !== folders.length)
    throw new EvalError(options.modelDirs.join(', '), 'two model folders have the same name');
  const names = folders.flatMap((folder) => options.precisions.map((p) => `${folder}-${p}`));
  if (options.baseline !== undefined && !names.includes(options.baseline)) {
    throw new EvalError('--baseline', `"${options.baseline}" is not one of the evaluated models (${names.join(', ')})`);
  }

  // Every dataset is read, selected and checked against every model's labels before any model is loaded.
  const data: LoadedData[] = [];
  for (const file of options.dataFiles) data.push(await loadData(task, file, options));
  const datasetNames = data.map((d) => d.info.name);
  data.forEach((d) => {
    if (datasetNames.filter((name) => name === d.info.name).length > 1)
      d.info.name = `${d.info.name} (${basename(d.info.file)})`;
  });
  for (const d of data) manifests.forEach((manifest, i) => d.adapter.check(manifest, folders[i]));

  const results: ModelResult[] = [];
  const models: ModelInfo[] = [];
  const predictions: { file: string; content: string }[] = [];
  const metrics = new ServerMetrics();
  const config = { precisions: options.precisions, runtime: options.runtime, batching: options.batching };
  for (const [f, dir] of options.modelDirs.entries()) {
    log(`loading ${dir} (${options.precisions.join(', ')})`);
    const served = await loadModelFolder(dir, config, metrics);
    try {
      for (const model of served) {
        const file = model.precision === 'int8' ? 'model.int8.onnx' : 'model.onnx';
        models.push({
          name: model.name,
          folder: folders[f],
          dir,
          precision: model.precision,
          architecture: model.manifest.architecture,
          encoderSparsity: model.manifest.sparsity.final.encoderLinearSparsity,
          artifactBytes: model.manifest.files[file]?.bytes ?? 0,
          labels: model.manifest.labels,
        });
      }
      for (const d of data) {
        const runs = new Map<string, Run>();
        for (const model of served) runs.set(model.name, await runModel(model, d, options, metrics));
        for (const model of served) {
          const run = runs.get(model.name)!;
          const scored = d.adapter.score(model.manifest, run.predictions);
          const result: ModelResult = {
            dataset: d.info.name,
            model: model.name,
            folder: folders[f],
            precision: model.precision,
            ...scored,
            items: d.adapter.size,
            seconds: run.seconds,
            itemsPerSecond: d.adapter.size / run.seconds,
            rows: run.rows,
            batches: run.batches,
            meanBatchRows: run.batches ? run.rows / run.batches : 0,
          };
          const reference = model.precision === 'fp32' ? undefined : runs.get(`${folders[f]}-fp32`);
          if (reference) {
            const identical = run.predictions.filter(
              (p, i) => d.adapter.key(p) === d.adapter.key(reference.predictions[i]),
            ).length;
            const logits = compareLogits(run.outputs, reference.outputs);
            result.fidelity = {
              reference: `${folders[f]}-fp32`,
              items: d.adapter.size,
              identicalItems: identical,
              identicalShare: (100 * identical) / d.adapter.size,
              meanAbsLogitDelta: logits.mean,
              maxAbsLogitDelta: logits.max,
              meanAbsReferenceLogit: logits.referenceScale,
              logitsCompared: logits.count,
              ...(d.adapter.agreement?.(run.predictions, reference.predictions) ?? {}),
            };
          }
          results.push(result);
          const exported = d.adapter.exportPredictions(model.manifest, run.predictions);
          predictions.push({
            file: `${slug(d.info.name)}.${model.name}.predictions.${exported.extension}`,
            content: exported.content,
          });
        }
      }
    } finally {
      await Promise.all(served.flatMap((model) => model.runners.map((runner) => runner.release())));
    }
  }

  // Differences against the baseline (named, or each folder's own fp32 model).
  for (const result of results) {
    const baselineName =
      options.baseline ?? (options.precisions.includes('fp32') ? `${result.folder}-fp32` : undefined);
    if (baselineName === undefined || baselineName === result.model) continue;
    const base = results.find((r) => r.model === baselineName && r.dataset === result.dataset);
    if (!base) continue;
    result.baseline = baselineName;
    result.difference = Object.fromEntries(
      Object.keys(result.metrics).map((key) => [key, difference(result.metrics[key], base.metrics[key])]),
    );
  }

  const report: EvalReport = {
    tool: 'sparse-bert-serve eval',
    version: converterVersion,
    createdAt: new Date().toISOString(),
    complete: true,
    task,
    settings: {
      precisions: options.precisions,
      selection: options.selection,
      concurrency: options.concurrency,
      runtime: options.runtime,
      batching: options.batching,
      ...(task === 'squad' ? { qa: options.qa } : {}),
      ...(task === 'conll' ? { aggregation: options.aggregation } : {}),
      ...(options.glueTask ? { glueTask: options.glueTask } : {}),
    },
    datasets: data.map((d) => ({
      ...d.info,
      evaluatedItems: d.adapter.size,
      selection: d.selection,
      metrics: d.adapter.metricSpecs,
    })),
    models,
    results,
    notes: [
      'Metrics are percentages. Differences are against the baseline (default: the fp32 model of the same folder).',
      'Fidelity compares each quantized model with the dense fp32 model of its folder on the very same token rows.',
    ],
  };
  return { report, predictions };
}
