import { join } from 'node:path';
import { int8ModelFile, type Manifest } from '../../conversion/manifest.js';
import type { BatchRow } from '../batcher/batcher.js';
import type { EngineAddon, KernelPath, LinearKernel, NativeEngine } from './engine-addon.js';
import { engineWeights } from './engine-weights.js';
import { readModelFile } from './onnx-initializers.js';
import type { ModelRunner, RowOutputs } from './runner.js';

export interface EngineSettings {
  threads: number;
  /** Force a kernel path (default: the best the CPU has). */
  isa?: KernelPath;
  /** fp32 attention instead of int8 (default: int8 where the CPU has AVX512-VNNI). */
  attention?: 'int8' | 'fp32';
  /** Force one kernel for every linear (default: each linear's fastest for its weights). */
  linearKernel?: LinearKernel;
  /** Force the portable attention / GELU / LayerNorm (default: AVX-512 where the CPU has it). */
  ops?: 'avx512' | 'portable';
}

/**
 * Runs ragged batches on the native engine: the rows' tokens concatenated with row offsets, no padding. The addon
 * runs each batch on its own threads (an async worker), so the event loop stays free.
 */
export class EngineRunner implements ModelRunner {
  readonly backend = 'engine' as const;
  readonly ragged = true;
  readonly kernelPath: string;

  private constructor(
    private engine: NativeEngine | undefined,
    private readonly task: Manifest['task'],
    private readonly outputNames: string[],
    private readonly labels: number,
    private readonly hasTokenTypes: boolean,
  ) {
    this.kernelPath = engine!.info().isa;
  }

  static create(addon: EngineAddon, dir: string, manifest: Manifest, settings: EngineSettings): EngineRunner {
    const { spec, tensors } = engineWeights(manifest, readModelFile(join(dir, int8ModelFile)));
    const engine = new addon.Engine(spec, tensors, {
      threads: settings.threads,
      ...(settings.isa ? { isa: settings.isa } : {}),
      ...(settings.linearKernel ? { linearKernel: settings.linearKernel } : {}),
      ...(settings.attention ? { attention: settings.attention } : {}),
      ...(settings.ops ? { ops: settings.ops } : {}),
    });
    return new EngineRunner(engine, manifest.task, manifest.signature.outputs, spec.labels, spec.typeVocab > 0);
  }

  get native(): NativeEngine {
    if (!this.engine) throw new Error('engine released');
    return this.engine;
  }

  readonly run = async (rows: BatchRow[]): Promise<RowOutputs[]> => {
    const offsets = new Int32Array(rows.length + 1);
    rows.forEach((row, r) => (offsets[r + 1] = offsets[r] + row.ids.length));
    const ids = new Int32Array(offsets[rows.length]);
    const typeIds = this.hasTokenTypes && rows.some((row) => row.typeIds) ? new Int32Array(ids.length) : null;
    rows.forEach((row, r) => {
      ids.set(row.ids, offsets[r]);
      if (typeIds && row.typeIds) typeIds.set(row.typeIds, offsets[r]);
    });
    const planes = await this.native.run(ids, typeIds, offsets);
    return rows.map((_, r) => {
      const [begin, end] = [offsets[r], offsets[r + 1]];
      if (this.task === 'question-answering')
        return {
          [this.outputNames[0]]: planes[0].subarray(begin, end),
          [this.outputNames[1]]: planes[1].subarray(begin, end),
        };
      if (this.task === 'token-classification')
        return { [this.outputNames[0]]: planes[0].subarray(begin * this.labels, end * this.labels) };
      return { [this.outputNames[0]]: planes[0].subarray(r * this.labels, (r + 1) * this.labels) };
    });
  };

  async release(): Promise<void> {
    this.engine?.dispose();
    this.engine = undefined;
  }
}
