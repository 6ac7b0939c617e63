/**
 * An independent reference forward pass for BERT and DistilBERT in Float64, following the Hugging Face
 * transformers PyTorch modules (eval mode, no dropout). Used to check the ONNX graphs the converter builds.
 */
import type { Linear, LayerNorm, ModelWeights } from '../checkpoint/layout.js';
import type { ModelSpec } from '../checkpoint/model-config.js';

export interface ReferenceInputs {
  /** [batch][seq]; all rows the same length. */
  inputIds: number[][];
  attentionMask: number[][];
  /** BERT only; zeros when absent. Ignored for DistilBERT. */
  tokenTypeIds?: number[][];
}

export interface ReferenceOutput {
  dims: number[];
  data: Float64Array;
}

/** torch.finfo(torch.float32).min, what HF puts on masked attention scores. */
const FLOAT32_MIN = -3.4028234663852886e38;
const TWO_OVER_SQRT_PI = 1.1283791670955126;

/**
 * erf(x) from the everywhere-convergent series erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (2n+1)!!.
 * All terms are positive, so there is no cancellation: the error stays near 1e-15 for |x| < 6,
 * and beyond 6 erf is ±1 to within 2.2e-17.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  const x2 = a * a;
  let term = a;
  let sum = a;
  for (let n = 0; term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
  }
  const value = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
  return x < 0 ? -value : value;
}

/** torch.nn.functional.gelu (exact, erf-based). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/**
 * y[rows, out] = x[rows, in] · Wᵀ + b with W in torch layout [out, in]. Weight rows are the outer loop, so each is
 * read from memory once, and four input rows share each weight load; every dot product is summed in order of k.
 */
function linear(x: Float64Array, rows: number, lin: Linear): Float64Array {
  const [outF, inF] = lin.weight.shape;
  const w = lin.weight.data;
  const bias = lin.bias.data;
  const y = new Float64Array(rows * outF);
  for (let o = 0; o < outF; o++) {
    const wo = o * inF;
    const b = bias[o];
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const x0 = r * inF;
      const x1 = x0 + inF;
      const x2 = x1 + inF;
      const x3 = x2 + inF;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let k = 0; k < inF; k++) {
        const wk = w[wo + k];
        a0 += x[x0 + k] * wk;
        a1 += x[x1 + k] * wk;
        a2 += x[x2 + k] * wk;
        a3 += x[x3 + k] * wk;
      }
      y[r * outF + o] = a0 + b;
      y[(r + 1) * outF + o] = a1 + b;
      y[(r + 2) * outF + o] = a2 + b;
      y[(r + 3) * outF + o] = a3 + b;
    }
    for (; r < rows; r++) {
      const xo = r * inF;
      let acc = 0;
      for (let k = 0; k < inF; k++) acc += x[xo + k] * w[wo + k];
      y[r * outF + o] = acc + b;
    }
  }
  return y;
}

/** In place: x = LayerNorm(x + residual) over the last dimension (biased variance, eps inside the sqrt). */
function addAndNorm(x: Float64Array, residual: Float64Array | null, rows: number, norm: LayerNorm, eps: number): void {
  const h = norm.gamma.shape[0];
  const gamma = norm.gamma.data;
  const beta = norm.beta.data;
  for (let r = 0; r < rows; r++) {
    const o = r * h;
    if (residual) for (let i = 0; i < h; i++) x[o + i] += residual[o + i];
    let mean = 0;
    for (let i = 0; i < h; i++) mean += x[o + i];
    mean /= h;
    let variance = 0;
    for (let i = 0; i < h; i++) variance += (x[o + i] - mean) ** 2;
    variance /= h;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < h; i++) x[o + i] = (x[o + i] - mean) * inv * gamma[i] + beta[i];
  }
}

/** Multi-head scaled dot-product attention; keys with mask 0 get the float32 minimum as their score (weight 0). */
function attention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  mask: number[][],
  batch: number,
  seq: number,
  hidden: number,
  numHeads: number,
): Float64Array {
  const headDim = hidden / numHeads;
  const scale = Math.sqrt(headDim);
  const context = new Float64Array(batch * seq * hidden);
  const probs = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let head = 0; head < numHeads; head++) {
      const ho = head * headDim;
      for (let i = 0; i < seq; i++) {
        const qo = (b * seq + i) * hidden + ho;
        let max = -Infinity;
        for (let j = 0; j < seq; j++) {
          let score = FLOAT32_MIN;
          if (mask[b][j] !== 0) {
            const ko = (b * seq + j) * hidden + ho;
            let dot = 0;
            for (let d = 0; d < headDim; d++) dot += q[qo + d] * k[ko + d];
            score = dot / scale;
          }
          probs[j] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let j = 0; j < seq; j++) sum += probs[j] = Math.exp(probs[j] - max);
        const co = (b * seq + i) * hidden + ho;
        for (let j = 0; j < seq; j++) {
          const p = probs[j] / sum;
          if (p === 0) continue;
          const vo = (b * seq + j) * hidden + ho;
          for (let d = 0; d < headDim; d++) context[co + d] += p * v[vo + d];
        }
      }
    }
  }
  return context;
}

function checkInputs(spec: ModelSpec, inputs: ReferenceInputs): { batch: number; seq: number } {
  const batch = inputs.inputIds.length;
  const seq = batch > 0 ? inputs.inputIds[0].length : 0;
  if (batch === 0 || seq === 0) throw new Error('reference forward: empty input');
  if (seq > spec.maxPositions) throw new Error(`reference forward: sequence length ${seq} > ${spec.maxPositions}`);
  const grids: [string, number[][] | undefined][] = [
    ['inputIds', inputs.inputIds],
    ['attentionMask', inputs.attentionMask],
    ['tokenTypeIds', inputs.tokenTypeIds],
  ];
  for (const [name, grid] of grids) {
    if (grid && (grid.length !== batch || grid.some((row) => row.length !== seq))) {
      throw new Error(`reference forward: ${name} must be [${batch}][${seq}]`);
    }
  }
  const typeLimit = spec.family === 'bert' ? spec.typeVocabSize : Infinity;
  const badId = (grid: number[][], limit: number) =>
    grid.flat().find((id) => !Number.isInteger(id) || id < 0 || id >= limit);
  const badToken = badId(inputs.inputIds, spec.vocabSize);
  if (badToken !== undefined) throw new Error(`reference forward: bad token id ${badToken}`);
  const badType = badId(inputs.tokenTypeIds ?? [], typeLimit);
  if (badType !== undefined) throw new Error(`reference forward: bad token type id ${badType}`);
  return { batch, seq };
}

/** Runs the model on the inputs and returns the head's outputs named as the exported ONNX graph names them. */
export function referenceForward(
  spec: ModelSpec,
  model: ModelWeights,
  inputs: ReferenceInputs,
): Record<string, ReferenceOutput> {
  const { batch, seq } = checkInputs(spec, inputs);
  const h = spec.hiddenSize;
  const rows = batch * seq;
  const eps = spec.layerNormEps;

  // Embeddings: word + position (+ token type for BERT), then LayerNorm.
  let x: Float64Array = new Float64Array(rows * h);
  const word = model.wordEmbeddings.data;
  const position = model.positionEmbeddings.data;
  const tokenType = model.tokenTypeEmbeddings?.data;
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      const o = (b * seq + s) * h;
      const wo = inputs.inputIds[b][s] * h;
      const po = s * h;
      for (let i = 0; i < h; i++) x[o + i] = word[wo + i] + position[po + i];
      if (tokenType) {
        const to = (inputs.tokenTypeIds?.[b][s] ?? 0) * h;
        for (let i = 0; i < h; i++) x[o + i] += tokenType[to + i];
      }
    }
  }
  addAndNorm(x, null, rows, model.embeddingNorm, eps);

  // Post-LN encoder layers (BertLayer / DistilBERT TransformerBlock have the same dataflow).
  const activate = spec.hiddenAct === 'gelu' ? gelu : (v: number) => (v > 0 ? v : 0);
  for (const layer of model.layers) {
    const q = linear(x, rows, layer.query);
    const k = linear(x, rows, layer.key);
    const v = linear(x, rows, layer.value);
    const context = attention(q, k, v, inputs.attentionMask, batch, seq, h, spec.numHeads);
    const attended = linear(context, rows, layer.attentionOutput);
    addAndNorm(attended, x, rows, layer.attentionNorm, eps);
    const inner = linear(attended, rows, layer.intermediate);
    for (let i = 0; i < inner.length; i++) inner[i] = activate(inner[i]);
    const out = linear(inner, rows, layer.output);
    addAndNorm(out, attended, rows, layer.outputNorm, eps);
    x = out;
  }

  const head = model.head;
  if (head.kind === 'question-answering') {
    const logits = linear(x, rows, head.qaOutputs);
    const start = new Float64Array(rows);
    const end = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      start[r] = logits[2 * r];
      end[r] = logits[2 * r + 1];
    }
    return { start_logits: { dims: [batch, seq], data: start }, end_logits: { dims: [batch, seq], data: end } };
  }
  const numLabels = head.classifier.weight.shape[0];
  if (head.kind === 'token-classification') {
    return { logits: { dims: [batch, seq, numLabels], data: linear(x, rows, head.classifier) } };
  }
  // Sequence classification: pool the first token of each row.
  const first = new Float64Array(batch * h);
  for (let b = 0; b < batch; b++) first.set(x.subarray(b * seq * h, b * seq * h + h), b * h);
  const pooled = linear(first, batch, head.pooler);
  for (let i = 0; i < pooled.length; i++) {
    pooled[i] = head.poolerActivation === 'tanh' ? Math.tanh(pooled[i]) : Math.max(0, pooled[i]);
  }
  return { logits: { dims: [batch, numLabels], data: linear(pooled, batch, head.classifier) } };
}
