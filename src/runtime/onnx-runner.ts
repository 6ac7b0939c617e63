import * as ort from 'onnxruntime-node';
import type { BatchRow } from '../batcher/batcher.js';

/** One row's slice of each model output, without its padding: [tokens] / [tokens, labels] / [labels]. */
export type RowOutputs = Record<string, Float32Array>;

export interface SessionSettings {
  threads: number;
  allowSpinning: boolean;
}

/** Runs padded batches through one onnxruntime session; callers keep to one run at a time per session. */
export class OnnxRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputNames: string[],
    private readonly outputNames: string[],
    private readonly padId: number,
    /** Token-level outputs ([B, S] / [B, S, labels]) lose their padded positions; [B, labels] rows stay whole. */
    private readonly tokenLevel: boolean,
  ) {}

  static async create(
    path: string,
    signature: { inputs: string[]; outputs: string[] },
    tokenLevel: boolean,
    padId: number,
    settings: SessionSettings,
  ): Promise<OnnxRunner> {
    const session = await ort.InferenceSession.create(path, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: settings.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      extra: { session: { intra_op: { allow_spinning: settings.allowSpinning ? '1' : '0' } } },
    });
    return new OnnxRunner(session, signature.inputs, signature.outputs, padId, tokenLevel);
  }

  /** Pads every row to the longest one in the batch (not to the model maximum) and slices the padding off again. */
  readonly run = async (rows: BatchRow[]): Promise<RowOutputs[]> => {
    const batch = rows.length;
    const length = Math.max(...rows.map((row) => row.ids.length));
    const ids = new BigInt64Array(batch * length).fill(BigInt(this.padId));
    const mask = new BigInt64Array(batch * length);
    const types = new BigInt64Array(batch * length);
    rows.forEach((row, r) => {
      for (let t = 0; t < row.ids.length; t++) {
        ids[r * length + t] = BigInt(row.ids[t]);
        mask[r * length + t] = 1n;
        if (row.typeIds) types[r * length + t] = BigInt(row.typeIds[t]);
      }
    });
    const dims = [batch, length];
    const all: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, dims),
      attention_mask: new ort.Tensor('int64', mask, dims),
      token_type_ids: new ort.Tensor('int64', types, dims),
    };
    const outputs = await this.session.run(Object.fromEntries(this.inputNames.map((name) => [name, all[name]])));
    return rows.map((row, r) => {
      const sliced: RowOutputs = {};
      for (const name of this.outputNames) {
        const tensor = outputs[name];
        const data = tensor.data as Float32Array;
        const perRow = data.length / batch;
        const kept = this.tokenLevel ? (perRow / length) * row.ids.length : perRow;
        sliced[name] = data.subarray(r * perRow, r * perRow + kept);
      }
      return sliced;
    });
  };

  release(): Promise<void> {
    return this.session.release();
  }
}
