/** The shapes shared by the load-test engine, its report writer and the CLI command. */

export type LoadtestTask = 'qa' | 'classify' | 'ner';

/** The server's task names (manifest.task, GET /models) for each route. */
export const manifestTask: Record<LoadtestTask, string> = {
  qa: 'question-answering',
  classify: 'text-classification',
  ner: 'token-classification',
};

/** A bad input or a failure the user should read as one line (exit code 1); figures so far are kept. */
export class LoadtestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadtestError';
  }
}

export interface LoadtestOptions {
  task: LoadtestTask;
  /** Served model names to compare, in this order; undefined: the dense and the sparse model of one folder. */
  models?: string[];
  /** The model the ratios are computed against; undefined: the first fp32 model. */
  baseline?: string;
  /** Target a running server (loopback only) instead of starting one. */
  url?: string;
  /** Where converted model folders are when the load test starts the server itself. */
  modelsDir: string;
  /** Extra flags passed to `sbs serve` (threads, batching) when the load test starts the server. */
  serveArgs: string[];
  dataset?: string;
  seed: number;
  concurrency: number[];
  /** Fixed arrival rates in requests per second (autocannon overallRate). */
  rates: number[];
  durationSeconds: number;
  warmupSeconds: number;
  maxRequests: number;
  /** Per-request timeout of the load generator, seconds. */
  timeoutSeconds: number;
  outDir: string;
  quick: boolean;
  log: (line: string) => void;
}

export interface LoadLevel {
  kind: 'concurrency' | 'rate';
  /** Connections for a concurrency level; requests per second for a rate level. */
  value: number;
  /** Connections autocannon opens (for a rate level: enough to sustain the rate). */
  connections: number;
}

export const levelLabel = (level: LoadLevel) =>
  level.kind === 'concurrency' ? `concurrency ${level.value}` : `rate ${level.value} req/s`;

export interface VariantInfo {
  name: string;
  precision?: string;
  task?: string;
  encoderSparsity?: number;
  compressionRatio?: number;
  maxSequenceLength?: number;
  role: 'baseline' | 'compared';
}

/** Mean and quantiles (from histogram buckets, linear within a bucket) of a server histogram over one run. */
export interface HistogramDelta {
  count: number;
  sum: number;
  mean: number | null;
  p50: number | null;
  p99: number | null;
}

export interface ServerFigures {
  /** Seconds a row waited in the model queue. */
  queueWait: HistogramDelta;
  /** session.run seconds per batch. */
  inference: HistogramDelta;
  /** Rows per batch. */
  batchSize: HistogramDelta;
  /** Padded tokens per batch. */
  batchPaddedTokens: HistogramDelta;
  /** Server-side request duration (all statuses). */
  requestDuration: HistogramDelta;
  /** Requests by status code, as the server counted them. */
  requestsByStatus: Record<string, number>;
  rejections: Record<string, number>;
  droppedRows: Record<string, number>;
  /** The server's own process CPU seconds over the run (prom-client default metric). */
  processCpuSeconds: number | null;
}

export interface ProcessFigures {
  /** user + system CPU seconds the server process spent during the run. */
  cpuSeconds: number;
  /** cpuSeconds / wall seconds: cores kept busy. */
  cpuCores: number;
  rssMbEnd: number;
  rssMbPeak: number;
}

/** Who kept the machine's cores busy during a run: a shared machine disturbs the figures; this shows by how much. */
export interface MachineFigures {
  /** Busy cores of the whole machine, averaged over the run. */
  busyCores: number;
  /** The load generator's own share (this process). */
  loadGeneratorCores: number;
  /** Everything else: other processes than the server and the load generator; null with --url (no server pid). */
  otherCores: number | null;
}

export type RunStatus = 'ok' | 'errors' | 'incomplete';

export interface RunResult {
  variant: string;
  level: LoadLevel;
  status: RunStatus;
  /** Why the run is not `ok`. */
  problems: string[];
  startedAt: string;
  durationSeconds: number;
  requestsSent: number;
  /** Responses received (any status). */
  responses: number;
  ok2xx: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  /** 2xx responses per second of run time. */
  throughput: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  server: ServerFigures | null;
  /** null when the target server was not started by the load test (--url). */
  process: ProcessFigures | null;
  machine: MachineFigures | null;
  warmup: { durationSeconds: number; responses: number; non2xx: number; errors: number };
}

export interface Ratio {
  level: LoadLevel;
  variant: string;
  baseline: string;
  /** variant throughput / baseline throughput (higher is better for the variant). */
  throughputRatio: number | null;
  /** variant p50 / baseline p50 (lower is better for the variant). */
  p50Ratio: number | null;
  p99Ratio: number | null;
  /** Why the ratios are null (a run had errors or is missing). */
  note?: string;
}

export interface LoadtestResults {
  tool: 'sparse-bert-serve loadtest';
  status: 'complete' | 'incomplete';
  problems: string[];
  startedAt: string;
  finishedAt: string;
  settings: Record<string, unknown>;
  environment: Record<string, unknown>;
  target: { url: string; startedByLoadtest: boolean; serverPid: number | null; serverCommand: string[] | null };
  payloads: { source: string; count: number; seed: number; meanWords: Record<string, number> };
  variants: VariantInfo[];
  levels: LoadLevel[];
  runs: RunResult[];
  ratios: Ratio[];
}
