/**
 * The sparse engine as a verification target: runs the int8 artifact's weights on the engine (when the addon is
 * built) and returns outputs in the same padded layout as onnxruntime's, so convert can compare it with the dense
 * model exactly as it compares onnxruntime int8.
 */
import type { ModelSpec } from '../checkpoint/model-config.js';
import type { ModelProto } from '../graph/onnx-builder.js';
import { graphSignature } from '../graph/bert-graph.js';
import { manifestDimensions } from '../manifest.js';
import { loadEngineAddon, type EngineLinear } from '../../src/runtime/engine-addon.js';
import { engineWeights } from '../../src/runtime/engine-weights.js';
import type { SampleBatch } from './sample-inputs.js';

export type PaddedOutputs = Record<string, { dims: number[]; data: Float32Array }>;

export interface EngineTarget {
  kernelPath: string;
  /** int8-avx512vnni or the fp32 attention the engine falls back to. */
  attention: string;
  /** Per encoder linear: the densities the engine measured and the kernel it chose from them. */
  linears: EngineLinear[];
  run(batch: SampleBatch): Promise<PaddedOutputs>;
  dispose(): void;
}

/** The engine for verification, or the reason it is unavailable (the addon is not built, or cannot run the model). */
export function engineTarget(
  spec: ModelSpec,
  int8Model: ModelProto,
  addonPath?: string,
): EngineTarget | { unavailable: string } {
  const status = loadEngineAddon(addonPath);
  if (!status.available) return { unavailable: status.reason };
  let native;
  try {
    const { spec: engineSpec, tensors } = engineWeights(
      { task: spec.task, dimensions: manifestDimensions(spec) },
      int8Model,
    );
    native = new status.addon.Engine(engineSpec, tensors, { threads: 2 });
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
  const engine = native;
  const outputs = graphSignature(spec).outputs;
  const info = engine.info();
  return {
    kernelPath: info.isa,
    attention: info.attention,
    linears: info.linears,
    dispose: () => engine.dispose(),
    async run(batch) {
      const rows = batch.inputIds.length;
      const length = batch.inputIds[0].length;
      const lengths = batch.attentionMask.map((mask) => mask.reduce((a, b) => a + b, 0));
      const offsets = new Int32Array(rows + 1);
      lengths.forEach((n, r) => (offsets[r + 1] = offsets[r] + n));
      const ids = new Int32Array(offsets[rows]);
      const types = batch.tokenTypeIds ? new Int32Array(offsets[rows]) : null;
      for (let r = 0; r < rows; r++) {
        ids.set(batch.inputIds[r].slice(0, lengths[r]), offsets[r]);
        types?.set(batch.tokenTypeIds![r].slice(0, lengths[r]), offsets[r]);
      }
      const planes = await engine.run(ids, types, offsets);
      if (spec.task === 'text-classification')
        return { [outputs[0]]: { dims: [rows, spec.numLabels], data: planes[0] } };
      const perToken = spec.task === 'question-answering' ? 1 : spec.numLabels;
      // Back into the padded [rows, length(, labels)] layout; padded positions stay 0 and are not compared.
      return Object.fromEntries(
        planes.map((plane, p) => {
          const padded = new Float32Array(rows * length * perToken);
          for (let r = 0; r < rows; r++)
            padded.set(plane.subarray(offsets[r] * perToken, offsets[r + 1] * perToken), r * length * perToken);
          return [outputs[p], { dims: perToken === 1 ? [rows, length] : [rows, length, perToken], data: padded }];
        }),
      );
    },
  };
}
