import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Head, LayerNorm, Linear, ModelWeights } from '../conversion/checkpoint/layout.js';
import type { ModelSpec, Task } from '../conversion/checkpoint/model-config.js';
import type { FloatTensor } from '../conversion/checkpoint/tensor.js';
import { erf, gelu, referenceForward, type ReferenceInputs } from '../conversion/verify/reference-forward.js';

// ---- tiny hand-built models -------------------------------------------------------------------

/** Deterministic values in [-1, 1). */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

function tensor(shape: number[], fill: () => number): FloatTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = fill();
  return { shape, data, sourceDtype: 'float32' };
}

function makeSpec(family: 'bert' | 'distilbert', task: Task, dims: Partial<ModelSpec> = {}): ModelSpec {
  const numLabels = task === 'question-answering' ? 2 : (dims.numLabels ?? 3);
  return {
    family,
    task,
    architecture: 'test',
    hiddenSize: 4,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 6,
    vocabSize: 10,
    maxPositions: 8,
    typeVocabSize: family === 'bert' ? 2 : 0,
    layerNormEps: 1e-12,
    hiddenAct: 'gelu',
    labels: Array.from({ length: numLabels }, (_, i) => `L${i}`),
    ...dims,
    numLabels,
  };
}

/** Random model; `weight` fills Linear weights (pass `() => 0` for all-zero weights), `value` everything else. */
function makeModel(spec: ModelSpec, value: () => number, weight: () => number = value): ModelWeights {
  const h = spec.hiddenSize;
  const linear = (module: string, inF: number, outF: number): Linear => ({
    module,
    weight: tensor([outF, inF], weight),
    bias: tensor([outF], value),
  });
  const norm = (): LayerNorm => ({ gamma: tensor([h], () => 1 + 0.5 * value()), beta: tensor([h], value) });
  let head: Head;
  if (spec.task === 'question-answering') head = { kind: 'question-answering', qaOutputs: linear('qa_outputs', h, 2) };
  else if (spec.task === 'token-classification') {
    head = { kind: 'token-classification', classifier: linear('classifier', h, spec.numLabels) };
  } else {
    head = {
      kind: 'text-classification',
      pooler: linear('pooler', h, h),
      poolerActivation: spec.family === 'bert' ? 'tanh' : 'relu',
      classifier: linear('classifier', h, spec.numLabels),
    };
  }
  return {
    wordEmbeddings: tensor([spec.vocabSize, h], value),
    positionEmbeddings: tensor([spec.maxPositions, h], value),
    tokenTypeEmbeddings: spec.family === 'bert' ? tensor([spec.typeVocabSize, h], value) : undefined,
    embeddingNorm: norm(),
    layers: Array.from({ length: spec.numLayers }, (_, i) => ({
      query: linear(`l${i}.q`, h, h),
      key: linear(`l${i}.k`, h, h),
      value: linear(`l${i}.v`, h, h),
      attentionOutput: linear(`l${i}.o`, h, h),
      attentionNorm: norm(),
      intermediate: linear(`l${i}.i`, h, spec.intermediateSize),
      output: linear(`l${i}.out`, spec.intermediateSize, h),
      outputNorm: norm(),
    })),
    head,
  };
}

// ---- an independent, deliberately naive scalar forward pass over one sequence -----------------

const row = (t: FloatTensor, i: number): number[] => Array.from(t.data.subarray(i * t.shape[1], (i + 1) * t.shape[1]));
const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i], 0);
const add = (a: number[], b: number[]): number[] => a.map((v, i) => v + b[i]);
const apply = (l: Linear, x: number[]): number[] =>
  l.bias.data.reduce<number[]>((out, b, o) => [...out, dot(row(l.weight, o), x) + b], []);

function layerNorm(x: number[], n: LayerNorm, eps: number): number[] {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * n.gamma.data[i] + n.beta.data[i]);
}

function naiveSequence(spec: ModelSpec, m: ModelWeights, ids: number[], mask: number[], types?: number[]): number[][] {
  const act = spec.hiddenAct === 'gelu' ? gelu : (v: number) => Math.max(0, v);
  let xs = ids.map((id, s) => {
    let e = add(row(m.wordEmbeddings, id), row(m.positionEmbeddings, s));
    if (m.tokenTypeEmbeddings) e = add(e, row(m.tokenTypeEmbeddings, types?.[s] ?? 0));
    return layerNorm(e, m.embeddingNorm, spec.layerNormEps);
  });
  const dh = spec.hiddenSize / spec.numHeads;
  for (const layer of m.layers) {
    const q = xs.map((x) => apply(layer.query, x));
    const k = xs.map((x) => apply(layer.key, x));
    const v = xs.map((x) => apply(layer.value, x));
    xs = xs.map((x, i) => {
      const context: number[] = [];
      for (let head = 0; head < spec.numHeads; head++) {
        const part = (vec: number[]) => vec.slice(head * dh, (head + 1) * dh);
        const scores = k.map((kj, j) => (mask[j] ? dot(part(q[i]), part(kj)) / Math.sqrt(dh) : -Infinity));
        const top = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - top));
        const total = exps.reduce((a, b) => a + b, 0);
        for (let d = 0; d < dh; d++) context.push(exps.reduce((s, e, j) => s + (e / total) * part(v[j])[d], 0));
      }
      const attended = layerNorm(add(apply(layer.attentionOutput, context), x), layer.attentionNorm, spec.layerNormEps);
      const ffn = apply(layer.output, apply(layer.intermediate, attended).map(act));
      return layerNorm(add(ffn, attended), layer.outputNorm, spec.layerNormEps);
    });
  }
  return xs;
}

/** The naive pass's outputs for a whole batch, flattened like referenceForward's. */
function naiveForward(spec: ModelSpec, m: ModelWeights, inputs: ReferenceInputs): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const push = (name: string, values: number[]) => (out[name] ??= []).push(...values);
  inputs.inputIds.forEach((ids, b) => {
    const xs = naiveSequence(spec, m, ids, inputs.attentionMask[b], inputs.tokenTypeIds?.[b]);
    const head = m.head;
    if (head.kind === 'question-answering') {
      for (const x of xs) {
        const [start, end] = apply(head.qaOutputs, x);
        push('start_logits', [start]);
        push('end_logits', [end]);
      }
    } else if (head.kind === 'token-classification') {
      for (const x of xs) push('logits', apply(head.classifier, x));
    } else {
      const pooled = apply(head.pooler, xs[0]).map((v) =>
        head.poolerActivation === 'tanh' ? Math.tanh(v) : Math.max(0, v),
      );
      push('logits', apply(head.classifier, pooled));
    }
  });
  return out;
}

function assertClose(actual: Float64Array, expected: number[], tolerance: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `[${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

// ---- the checks --------------------------------------------------------------------------------

test('erf and exact GELU match known values', () => {
  const close = (actual: number, expected: number, tolerance = 1e-14) =>
    assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} vs ${expected}`);
  assert.equal(erf(0), 0);
  close(erf(0.5), 0.5204998778130465);
  close(erf(-2), -0.9953222650189527);
  close(erf(3.5), 0.9999992569016276);
  close(erf(1e-3), 0.0011283787909692363, 1e-18);
  assert.equal(erf(7), 1);
  assert.equal(erf(-7), -1);
  close(gelu(1), 0.8413447460685429, 1e-15);
  close(gelu(-0.5), -0.15426876936299344, 1e-15);
  close(gelu(2.5), 2.4844758366855597);
  close(gelu(-3), -0.004049694094890284); // -3·Φ(-3)
  close(gelu(-12), 0, 1e-30);
});

test('with all Linear weights zero, QA logits are exactly the qa_outputs bias', () => {
  for (const family of ['bert', 'distilbert'] as const) {
    const spec = makeSpec(family, 'question-answering');
    const model = makeModel(spec, rng(1), () => 0);
    const inputs = {
      inputIds: [
        [1, 2, 3, 0],
        [4, 5, 0, 0],
      ],
      attentionMask: [
        [1, 1, 1, 1],
        [1, 1, 0, 0],
      ],
    };
    const out = referenceForward(spec, model, inputs);
    const bias = model.head.kind === 'question-answering' ? model.head.qaOutputs.bias.data : new Float32Array(2);
    assert.deepEqual(out.start_logits.dims, [2, 4]);
    assert.deepEqual(out.end_logits.dims, [2, 4]);
    for (let i = 0; i < 8; i++) {
      assert.equal(out.start_logits.data[i], bias[0]);
      assert.equal(out.end_logits.data[i], bias[1]);
    }
  }
});

test('changing a masked token does not change the logits of unmasked positions', () => {
  const cases: [ModelSpec['family'], Task][] = [
    ['bert', 'question-answering'],
    ['distilbert', 'token-classification'],
    ['bert', 'text-classification'],
    ['distilbert', 'text-classification'],
  ];
  for (const [family, task] of cases) {
    const spec = makeSpec(family, task);
    const model = makeModel(spec, rng(7));
    const attentionMask = [[1, 1, 1, 0, 0]];
    const a = referenceForward(spec, model, { inputIds: [[1, 2, 3, 4, 0]], attentionMask });
    const b = referenceForward(spec, model, { inputIds: [[1, 2, 3, 9, 0]], attentionMask });
    for (const name of Object.keys(a)) {
      const perPosition = a[name].dims.length > 1 && a[name].dims[1] === 5;
      const width = perPosition ? a[name].data.length / 5 : a[name].data.length;
      const kept = perPosition ? 3 * width : width; // positions 0..2 are unmasked
      assert.deepEqual(a[name].data.subarray(0, kept), b[name].data.subarray(0, kept), `${family} ${task} ${name}`);
      // The masked position itself still gets (different) logits, as in HF.
      if (perPosition)
        assert.notDeepEqual(a[name].data.subarray(3 * width, 4 * width), b[name].data.subarray(3 * width, 4 * width));
    }
  }
});

test('1 layer, hidden 2, 1 head matches a naive scalar computation', () => {
  const cases: [ModelSpec['family'], Task, 'gelu' | 'relu'][] = [
    ['bert', 'text-classification', 'gelu'],
    ['bert', 'question-answering', 'gelu'],
    ['distilbert', 'question-answering', 'relu'],
    ['distilbert', 'text-classification', 'gelu'],
    ['bert', 'token-classification', 'relu'],
  ];
  for (const [family, task, hiddenAct] of cases) {
    const spec = makeSpec(family, task, {
      hiddenSize: 2,
      numHeads: 1,
      numLayers: 1,
      intermediateSize: 3,
      hiddenAct,
      numLabels: 2,
    });
    const model = makeModel(spec, rng(3));
    const inputs = { inputIds: [[2, 7, 5]], attentionMask: [[1, 1, 1]], tokenTypeIds: [[0, 1, 1]] };
    const out = referenceForward(spec, model, inputs);
    const expected = naiveForward(spec, model, inputs);
    assert.deepEqual(Object.keys(out).sort(), Object.keys(expected).sort());
    for (const name of Object.keys(out)) assertClose(out[name].data, expected[name], 1e-9);
  }
});

test('multi-head, multi-layer, padded batch matches the naive computation with the right dims', () => {
  for (const task of ['question-answering', 'text-classification', 'token-classification'] as const) {
    for (const family of ['bert', 'distilbert'] as const) {
      const spec = makeSpec(family, task, {
        hiddenSize: 6,
        numHeads: 3,
        numLayers: 2,
        intermediateSize: 8,
        numLabels: 4,
      });
      const model = makeModel(spec, rng(11));
      const inputs = {
        inputIds: [
          [1, 4, 6, 2, 0, 0],
          [3, 3, 8, 9, 5, 2],
        ],
        attentionMask: [
          [1, 1, 1, 1, 0, 0],
          [1, 1, 1, 1, 1, 1],
        ],
        tokenTypeIds: [
          [0, 0, 1, 1, 0, 0],
          [0, 1, 1, 1, 1, 1],
        ],
      };
      const out = referenceForward(spec, model, inputs);
      const expected = naiveForward(spec, model, inputs);
      for (const name of Object.keys(out)) assertClose(out[name].data, expected[name], 1e-9);
      if (task === 'question-answering') assert.deepEqual(out.start_logits.dims, [2, 6]);
      if (task === 'text-classification') assert.deepEqual(out.logits.dims, [2, 4]);
      if (task === 'token-classification') assert.deepEqual(out.logits.dims, [2, 6, 4]);
    }
  }
});

test('BERT token type ids default to zeros and matter when given', () => {
  const spec = makeSpec('bert', 'text-classification');
  const model = makeModel(spec, rng(5));
  const base = { inputIds: [[1, 2, 3]], attentionMask: [[1, 1, 1]] };
  const implicit = referenceForward(spec, model, base).logits.data;
  assert.deepEqual(referenceForward(spec, model, { ...base, tokenTypeIds: [[0, 0, 0]] }).logits.data, implicit);
  assert.notDeepEqual(referenceForward(spec, model, { ...base, tokenTypeIds: [[0, 1, 1]] }).logits.data, implicit);
});

test('rejects malformed inputs', () => {
  const spec = makeSpec('bert', 'question-answering');
  const model = makeModel(spec, rng(9));
  assert.throws(
    () => referenceForward(spec, model, { inputIds: [[1, 2], [1]], attentionMask: [[1, 1], [1]] }),
    /inputIds/,
  );
  assert.throws(() => referenceForward(spec, model, { inputIds: [[1, 2]], attentionMask: [[1]] }), /attentionMask/);
  assert.throws(() => referenceForward(spec, model, { inputIds: [[1, 10]], attentionMask: [[1, 1]] }), /token id 10/);
  assert.throws(
    () => referenceForward(spec, model, { inputIds: [[1]], attentionMask: [[1]], tokenTypeIds: [[2]] }),
    /token type/,
  );
  assert.throws(
    () => referenceForward(spec, model, { inputIds: [Array(9).fill(1)], attentionMask: [Array(9).fill(1)] }),
    /length 9/,
  );
});
