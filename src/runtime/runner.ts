import type { BatchRow } from '../batcher/batcher.js';

/** One row's slice of each model output, without padding: [tokens] / [tokens, labels] / [labels]. */
export type RowOutputs = Record<string, Float32Array>;

export type Backend = 'engine' | 'onnxruntime';

/** What every runtime offers the batcher: run a batch of rows, one result per row, one batch at a time. */
export interface ModelRunner {
  readonly backend: Backend;
  /** Kernel path for the engine (avx512vnni, ...), "cpu" for onnxruntime's own dispatch. */
  readonly kernelPath: string;
  /** Ragged runners pay only for real tokens: the batcher need not group rows by length. */
  readonly ragged: boolean;
  run(rows: BatchRow[]): Promise<RowOutputs[]>;
  release(): Promise<void>;
}
