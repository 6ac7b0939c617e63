/** Options and report shapes of `sbs eval` (see evaluate.ts). */
import type { Precision, ServerConfig } from '../src/config.js';
import type { AggregationStrategy } from '../src/tasks/ner.js';
import type { Selection } from './select.js';
import type { EvalTask, MetricSpec, QaEvalOptions, Scored } from './tasks.js';

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
