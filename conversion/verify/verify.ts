import * as ort from 'onnxruntime-node';
import type { ModelWeights } from '../checkpoint/layout.js';
import type { ModelSpec } from '../checkpoint/model-config.js';
import { graphSignature } from '../graph/bert-graph.js';
import { referenceForward } from './reference-forward.js';
import type { EngineTarget } from './engine-outputs.js';
import { sampleBatch, type SampleBatch } from './sample-inputs.js';

export interface Tolerances {
  /** Max |dense ONNX - reference| over every logit. */
  denseMaxAbs: number;
  /** Min cosine similarity of int8 vs dense logits, per output. */
  int8MinCosine: number;
}

export const defaultTolerances: Tolerances = { denseMaxAbs: 1e-4, int8MinCosine: 0.99 };

export interface VerificationReport {
  denseVsReference: { rows: number; sequenceLength: number; maxAbsDiff: number; tolerance: number; passed: boolean };
  int8VsDense: {
    rows: number;
    sequenceLength: number;
    cosine: Record<string, number>;
    maxAbsDiff: number;
    meanAbsDiff: number;
    /** Share of predictions (QA start/end, label, or token label) with the same argmax. */
    argmaxAgreement: number;
    /** QA only: share of rows whose best span (start <= end, at most 30 tokens) is identical. */
    spanAgreement?: number;
    minCosine: number;
    passed: boolean;
  };
  /** The same int8 weights on the sparse engine vs dense, on the same rows (absent where the engine is not built). */
  engineVsDense?: Omit<VerificationReport['int8VsDense'], 'rows' | 'sequenceLength'> & {
    kernelPath: string;
    attention: string;
    /** What the engine measured of each encoder linear's weights and the kernel it chose (from the weights alone). */
    linears: {
      layer: number;
      name: string;
      kernel: string;
      densities: { weights: number; quads: number; outputBlocks: number };
    }[];
  };
  /** Why the engine was not verified. */
  engineSkipped?: string;
  passed: boolean;
}

type Outputs = Record<string, { dims: number[]; data: Float32Array | Float64Array }>;

const round4 = (value: number) => Math.round(value * 1e4) / 1e4;

function feeds(batch: SampleBatch, names: string[]): Record<string, ort.Tensor> {
  const rows = batch.inputIds.length;
  const length = batch.inputIds[0].length;
  const tensor = (values: number[][]) =>
    new ort.Tensor('int64', BigInt64Array.from(values.flat(), BigInt), [rows, length]);
  const all: Record<string, ort.Tensor> = {
    input_ids: tensor(batch.inputIds),
    attention_mask: tensor(batch.attentionMask),
  };
  if (batch.tokenTypeIds) all.token_type_ids = tensor(batch.tokenTypeIds);
  return Object.fromEntries(names.map((name) => [name, all[name]]));
}

export async function runOnnx(session: ort.InferenceSession, batch: SampleBatch, spec: ModelSpec): Promise<Outputs> {
  const { inputs, outputs } = graphSignature(spec);
  const result = await session.run(feeds(batch, inputs));
  return Object.fromEntries(
    outputs.map((name) => [name, { dims: [...result[name].dims], data: result[name].data as Float32Array }]),
  );
}

function maxAbsDiff(a: Outputs, b: Outputs): number {
  let max = 0;
  for (const name of Object.keys(a)) {
    const x = a[name].data;
    const y = b[name].data;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
  }
  return max;
}

/** Flat indices of the values that belong to real (unpadded) tokens; sequence-level outputs keep everything. */
function attendedIndices(dims: number[], mask: number[][], spec: ModelSpec): number[] {
  const indices: number[] = [];
  const perToken = spec.task === 'text-classification' ? 0 : dims.length === 3 ? dims[2] : 1;
  const total = dims.reduce((a, b) => a * b, 1);
  if (!perToken) return Array.from({ length: total }, (_, i) => i);
  const length = dims[1];
  for (let i = 0; i < total; i++) {
    const token = Math.floor(i / perToken);
    if (mask[Math.floor(token / length)][token % length]) indices.push(i);
  }
  return indices;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>, indices: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const i of indices) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
}

function argmax(data: ArrayLike<number>, from: number, count: number, allowed?: (i: number) => boolean): number {
  let best = -1;
  for (let i = 0; i < count; i++) {
    if (allowed && !allowed(i)) continue;
    if (best < 0 || data[from + i] > data[from + best]) best = i;
  }
  return best;
}

function bestSpan(
  start: ArrayLike<number>,
  end: ArrayLike<number>,
  from: number,
  length: number,
  mask: number[],
  maxAnswer = 30,
): string {
  let best = '';
  let bestScore = -Infinity;
  for (let s = 0; s < length; s++) {
    if (!mask[s]) continue;
    for (let e = s; e < Math.min(length, s + maxAnswer); e++) {
      if (!mask[e]) continue;
      const score = start[from + s] + end[from + e];
      if (score > bestScore) {
        bestScore = score;
        best = `${s}:${e}`;
      }
    }
  }
  return best;
}

function agreement(
  spec: ModelSpec,
  dense: Outputs,
  int8: Outputs,
  batch: SampleBatch,
): { argmax: number; span?: number } {
  const rows = batch.inputIds.length;
  const length = batch.inputIds[0].length;
  let same = 0;
  let total = 0;
  if (spec.task === 'question-answering') {
    let spans = 0;
    for (let r = 0; r < rows; r++) {
      const attended = (i: number) => batch.attentionMask[r][i] === 1;
      for (const name of ['start_logits', 'end_logits']) {
        same +=
          argmax(dense[name].data, r * length, length, attended) ===
          argmax(int8[name].data, r * length, length, attended)
            ? 1
            : 0;
        total++;
      }
      const spanOf = (o: Outputs) =>
        bestSpan(o.start_logits.data, o.end_logits.data, r * length, length, batch.attentionMask[r]);
      spans += spanOf(dense) === spanOf(int8) ? 1 : 0;
    }
    return { argmax: same / total, span: spans / rows };
  }
  const labels = spec.numLabels;
  const positions = spec.task === 'text-classification' ? rows : rows * length;
  for (let p = 0; p < positions; p++) {
    if (spec.task === 'token-classification' && !batch.attentionMask[Math.floor(p / length)][p % length]) continue;
    same += argmax(dense.logits.data, p * labels, labels) === argmax(int8.logits.data, p * labels, labels) ? 1 : 0;
    total++;
  }
  return { argmax: same / total };
}

export interface VerifyInputs {
  spec: ModelSpec;
  model: ModelWeights;
  denseOnnx: Uint8Array;
  int8Onnx: Uint8Array;
  tolerances: Tolerances;
  seed: number;
  /** The sparse engine on the int8 weights, or why it is unavailable. */
  engine?: EngineTarget | { unavailable: string };
}

/** Dense ONNX vs the TypeScript reference on the same weights; int8 ONNX vs dense ONNX on more, longer rows. */
export async function verifyArtifacts({
  spec,
  model,
  denseOnnx,
  int8Onnx,
  tolerances,
  seed,
  engine,
}: VerifyInputs): Promise<VerificationReport> {
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: 2 };
  const dense = await ort.InferenceSession.create(denseOnnx, options);
  const int8 = await ort.InferenceSession.create(int8Onnx, options);
  try {
    // The reference is plain JS: keep its batch small so BERT-Large still verifies in seconds.
    const small = sampleBatch(spec, 2, 16, seed);
    const reference = referenceForward(spec, model, small);
    const denseSmall = await runOnnx(dense, small, spec);
    const referenceDiff = maxAbsDiff(reference, denseSmall);

    const large = sampleBatch(spec, 8, 64, seed + 1);
    const denseLarge = await runOnnx(dense, large, spec);
    const int8Large = await runOnnx(int8, large, spec);
    const compare = (candidate: Outputs) => {
      const cosines: Record<string, number> = {};
      let sumAbs = 0;
      let maxAbs = 0;
      let count = 0;
      // Real tokens only: the engine computes no padded positions at all.
      for (const [name, output] of Object.entries(denseLarge)) {
        const indices = attendedIndices(output.dims, large.attentionMask, spec);
        cosines[name] = cosine(output.data, candidate[name].data, indices);
        for (const i of indices) {
          const diff = Math.abs(output.data[i] - candidate[name].data[i]);
          sumAbs += diff;
          maxAbs = Math.max(maxAbs, diff);
        }
        count += indices.length;
      }
      const agree = agreement(spec, denseLarge, candidate, large);
      return {
        cosine: cosines,
        maxAbsDiff: maxAbs,
        meanAbsDiff: sumAbs / count,
        argmaxAgreement: agree.argmax,
        spanAgreement: agree.span,
        minCosine: tolerances.int8MinCosine,
        passed: Math.min(...Object.values(cosines)) >= tolerances.int8MinCosine,
      };
    };
    const int8Report = compare(int8Large);
    let engineReport: VerificationReport['engineVsDense'];
    if (engine && 'run' in engine)
      engineReport = {
        ...compare(await engine.run(large)),
        kernelPath: engine.kernelPath,
        attention: engine.attention,
        linears: engine.linears.map(({ layer, name, kernel, densities }) => ({
          layer,
          name,
          kernel,
          densities: {
            weights: round4(densities.weights),
            quads: round4(densities.quads),
            outputBlocks: round4(densities.outputBlocks),
          },
        })),
      };
    const densePassed = referenceDiff <= tolerances.denseMaxAbs;
    const int8Passed = int8Report.passed && (engineReport?.passed ?? true);
    return {
      denseVsReference: {
        rows: 2,
        sequenceLength: small.inputIds[0].length,
        maxAbsDiff: referenceDiff,
        tolerance: tolerances.denseMaxAbs,
        passed: densePassed,
      },
      int8VsDense: {
        rows: 8,
        sequenceLength: large.inputIds[0].length,
        ...int8Report,
      },
      ...(engineReport ? { engineVsDense: engineReport } : {}),
      ...(engine && 'unavailable' in engine ? { engineSkipped: engine.unavailable } : {}),
      passed: densePassed && int8Passed,
    };
  } finally {
    await dense.release();
    await int8.release();
  }
}
