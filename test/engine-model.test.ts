/**
 * The native sparse engine on whole models (tiny dims, seeded weights): agreement with the dense fp32 model no
 * worse than onnxruntime int8's, for BERT and DistilBERT and all three heads; bit-identical rows whatever batch
 * they run in; every kernel path and the dense/sparse kernel choice giving the same bits; bad input refused.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { Family, Task } from '../conversion/checkpoint/model-config.js';
import type { Manifest } from '../conversion/manifest.js';
import type { RowOutputs } from '../src/runtime/runner.js';
import type { EngineAddon } from '../src/runtime/engine-addon.js';
import {
  engineRunner,
  onnxRunner,
  portableOpsEngine,
  randomRows,
  requireAddon,
  tinyModel,
} from './helpers/engine-fixtures.js';
import type { PruningBlock } from '../conversion/sparsity/block.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('engine-model');
let addon: EngineAddon;
const models = new Map<string, { dir: string; manifest: Manifest }>();
const cases: [string, Family, Task, number][] = [
  ['bert-qa', 'bert', 'question-answering', 0.9],
  ['bert-cls', 'bert', 'text-classification', 0.85],
  ['bert-ner', 'bert', 'token-classification', 0],
  ['distil-qa', 'distilbert', 'question-answering', 0.8],
  ['distil-cls', 'distilbert', 'text-classification', 0.9],
  ['distil-ner', 'distilbert', 'token-classification', 0.9],
];
/** Heads of 16 and 64 dimensions take the AVX-512 attention (the tiny preset's 8-dimension heads do not). */
const wideHeads: [string, Family, Task, number, { hiddenSize: number; numHeads: number; intermediateSize: number }][] =
  [
    ['bert-qa-h16', 'bert', 'question-answering', 0.9, { hiddenSize: 64, numHeads: 4, intermediateSize: 128 }],
    [
      'distil-ner-h64',
      'distilbert',
      'token-classification',
      0.8,
      { hiddenSize: 128, numHeads: 2, intermediateSize: 256 },
    ],
  ];

before(async () => {
  addon = requireAddon();
  for (const [name, family, task, sparsity] of cases)
    models.set(name, await tinyModel(root, name, family, task, sparsity));
  for (const [name, family, task, sparsity, dims] of wideHeads)
    models.set(name, await tinyModel(root, name, family, task, sparsity, 5, dims));
});

const meanAbsDiff = (a: RowOutputs[], b: RowOutputs[]) => {
  let sum = 0;
  let count = 0;
  a.forEach((row, r) => {
    for (const name of Object.keys(row)) {
      assert.equal(row[name].length, b[r][name].length, `${name} of row ${r}: length`);
      row[name].forEach((v, i) => ((sum += Math.abs(v - b[r][name][i])), count++));
    }
  });
  return sum / count;
};

const assertIdentical = (a: RowOutputs, b: RowOutputs, what: string) => {
  for (const name of Object.keys(a)) assert.deepEqual([...a[name]], [...b[name]], `${what}: ${name} differs`);
};

for (const [name] of [...cases, ...wideHeads]) {
  test(`${name}: the engine deviates from fp32 no more than onnxruntime int8 does, on ragged batches`, async () => {
    const model = models.get(name)!;
    const engine = engineRunner(addon, model);
    const [int8, fp32] = await Promise.all([onnxRunner(model, 'model.int8.onnx'), onnxRunner(model, 'model.onnx')]);
    try {
      const rows = randomRows([9, 1, 30, 2, 70, 17], model.manifest.dimensions.vocabSize, 11);
      const [e, q, f] = [await engine.run(rows), await int8.run(rows), await fp32.run(rows)];
      const engineError = meanAbsDiff(e, f);
      const ortError = meanAbsDiff(q, f);
      // Per-token activation scales are at least as fine as ORT's per-tensor ones; allow noise at tiny dims.
      assert.ok(engineError <= 1.5 * ortError + 2e-4, `engine mean |Δ| ${engineError} vs onnxruntime int8 ${ortError}`);
      // convert verified the engine too, on its own rows, and recorded it beside onnxruntime int8.
      const recorded = model.manifest.verification;
      assert.ok(recorded.engineVsDense?.passed, JSON.stringify(recorded.engineVsDense ?? recorded.engineSkipped));
      assert.equal(recorded.engineVsDense!.kernelPath, addon.cpuInfo().best);
      assert.ok(recorded.engineVsDense!.meanAbsDiff <= 1.5 * recorded.int8VsDense.meanAbsDiff + 2e-4);
      const scale = meanAbsDiff(
        f.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v.map(() => 0)]))),
        f,
      );
      assert.ok(
        engineError < 0.05 * scale + 1e-3,
        `engine error ${engineError} is not small next to the logits' size ${scale}`,
      );
    } finally {
      await Promise.all([engine.release(), int8.release(), fp32.release()]);
    }
  });
}

test('the AVX-512 attention, GELU and LayerNorm agree with the portable ones', async (t) => {
  if (addon.cpuInfo().ops !== 'avx512') return t.skip('this CPU has no AVX-512');
  for (const [name] of wideHeads) {
    const model = models.get(name)!;
    const [fast, portable] = [engineRunner(addon, model), portableOpsEngine(addon, model)];
    try {
      assert.equal(fast.native.info().ops, 'avx512');
      assert.equal(portable.native.info().ops, 'portable');
      const rows = randomRows([1, 15, 16, 17, 64, 90], model.manifest.dimensions.vocabSize, 21);
      const [a, b] = [await fast.run(rows), await portable.run(rows)];
      const size = meanAbsDiff(
        b.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v.map(() => 0)]))),
        b,
      );
      assert.ok(meanAbsDiff(a, b) < 1e-3 * size + 1e-6, `${name}: mean |Δ| ${meanAbsDiff(a, b)} vs size ${size}`);
    } finally {
      await Promise.all([fast.release(), portable.release()]);
    }
  }
});

test('batch invariance: a row gives the same bits alone, in any batch, at any position', async () => {
  for (const name of ['bert-qa', 'distil-ner', 'bert-cls', 'bert-qa-h16', 'distil-ner-h64']) {
    const model = models.get(name)!;
    const engine = engineRunner(addon, model);
    try {
      // Lengths cross the 64-token tile and 16-token block boundaries; the batch spans several tiles.
      const rows = randomRows([5, 64, 1, 63, 100, 17, 33, 2], model.manifest.dimensions.vocabSize, 3);
      const together = await engine.run(rows);
      const reversed = (await engine.run([...rows].reverse())).reverse();
      for (let r = 0; r < rows.length; r++) {
        const alone = (await engine.run([rows[r]]))[0];
        assertIdentical(alone, together[r], `${name} row ${r} alone vs batched`);
        assertIdentical(reversed[r], together[r], `${name} row ${r} in reversed order`);
      }
    } finally {
      await engine.release();
    }
  }
});

test('every kernel path this CPU runs, and every linear kernel (dense, sparse quads, output blocks), give bit-identical outputs', async () => {
  const { supported } = addon.cpuInfo();
  assert.ok(supported.includes('scalar'));
  const model = models.get('bert-qa')!;
  const rows = randomRows([12, 40, 3], model.manifest.dimensions.vocabSize, 9);
  const reference = await (async () => {
    const engine = engineRunner(addon, model, { isa: 'scalar', linearKernel: 'dense' });
    try {
      return await engine.run(rows);
    } finally {
      await engine.release();
    }
  })();
  for (const isa of supported) {
    for (const linearKernel of ['dense', 'sparse-quads', 'sparse-out-blocks'] as const) {
      const engine = engineRunner(addon, model, { isa, linearKernel, threads: isa === 'scalar' ? 1 : 2 });
      try {
        assert.equal(engine.kernelPath, isa);
        const { layers, linears } = engine.native.info();
        assert.match(layers, new RegExp(`qkv: 2/2 ${linearKernel}`));
        assert.ok(linears.every((linear) => linear.kernel === linearKernel));
        const outputs = await engine.run(rows);
        outputs.forEach((row, r) => assertIdentical(row, reference[r], `${isa}, ${linearKernel}, row ${r}`));
      } finally {
        await engine.release();
      }
    }
  }
});

test("convert records per linear what the engine measured and chose: Intel's 1x4 (4 output channels) runs on output blocks, 4-input blocks on quads, dense on dense", async () => {
  const dims = { hiddenSize: 64, numHeads: 4, intermediateSize: 256 };
  const expectations: [string, number, PruningBlock | undefined, string][] = [
    ['blocks-1x4', 0.9, { outputs: 4, inputs: 1 }, 'sparse-out-blocks'],
    ['blocks-4x1', 0.9, { outputs: 1, inputs: 4 }, 'sparse-quads'],
    ['dense-choice', 0, undefined, 'dense'],
  ];
  for (const [name, sparsity, block, kernel] of expectations) {
    const model = await tinyModel(root, name, 'bert', 'question-answering', sparsity, 7, dims, block);
    const recorded = model.manifest.verification.engineVsDense!;
    assert.equal(recorded.linears.length, 4 * model.manifest.dimensions.numLayers);
    for (const linear of recorded.linears) {
      assert.equal(linear.kernel, kernel, `${name}: layer ${linear.layer} ${linear.name}`);
      const { weights, quads, outputBlocks } = linear.densities;
      const what = `${name} layer ${linear.layer} ${linear.name}: ${JSON.stringify(linear.densities)}`;
      // int8 rounding zeroes a few more weights inside kept blocks, so the weight density sits a little below.
      if (block?.outputs === 4) assert.ok(Math.abs(outputBlocks - 0.1) < 0.01 && quads > 2 * outputBlocks, what);
      if (block?.inputs === 4) assert.ok(Math.abs(quads - 0.1) < 0.01 && outputBlocks > 2 * quads, what);
      if (!block) assert.ok(weights > 0.9 && quads > 0.99, what);
    }
    // The running engine reports the same choice.
    const engine = engineRunner(addon, model);
    try {
      assert.deepEqual(
        engine.native.info().linears.map((l) => l.kernel),
        recorded.linears.map((l) => l.kernel),
      );
    } finally {
      await engine.release();
    }
  }
});

test('bad batches are refused with a message naming the problem, and the engine keeps working', async () => {
  const model = models.get('bert-qa')!;
  const engine = engineRunner(addon, model);
  const native = engine.native;
  const vocab = model.manifest.dimensions.vocabSize;
  const maxPositions = model.manifest.dimensions.maxPositions;
  const ids = (values: number[]) => Int32Array.from(values);
  try {
    const bad: [string, () => Promise<unknown>, RegExp][] = [
      ['empty batch', () => native.run(ids([]), null, ids([0])), /at least one row/],
      [
        'id past the vocabulary',
        () => native.run(ids([2, vocab, 3]), null, ids([0, 3])),
        new RegExp(`token id ${vocab} at position 1`),
      ],
      ['negative id', () => native.run(ids([2, -1]), null, ids([0, 2])), /token id -1/],
      [
        'row longer than the position table',
        () => native.run(new Int32Array(maxPositions + 1).fill(5), null, ids([0, maxPositions + 1])),
        /position table holds/,
      ],
      ['empty row', () => native.run(ids([2, 3]), null, ids([0, 0, 2])), /row 0 is empty/],
      ['offsets past the ids', () => native.run(ids([2, 3]), null, ids([0, 5])), /last offset is 5 but there are 2/],
      [
        'type ids of the wrong length',
        () => native.run(ids([2, 3]), ids([0]), ids([0, 2])),
        /typeIds: 1 values for 2 tokens/,
      ],
      ['token type past the table', () => native.run(ids([2, 3]), ids([0, 7]), ids([0, 2])), /token type 7/],
      [
        'not an Int32Array',
        () => native.run([1, 2] as unknown as Int32Array, null, ids([0, 2])),
        /ids must be an Int32Array/,
      ],
    ];
    for (const [what, run, message] of bad) await assert.rejects(run, message, what);
    const [ok] = await engine.run(randomRows([8], vocab));
    assert.equal(ok.start_logits.length, 8);
    assert.ok(ok.start_logits.every(Number.isFinite));
  } finally {
    await engine.release();
  }
  await assert.rejects(() => native.run(ids([2, 3]), null, ids([0, 2])), /disposed/);
});

test('a weight set that does not match the spec is refused, naming the tensor', async () => {
  const model = models.get('distil-ner')!;
  const engine = engineRunner(addon, model);
  await engine.release();
  const { engineWeights } = await import('../src/runtime/engine-weights.js');
  const { readModelFile } = await import('../src/runtime/onnx-initializers.js');
  const { join } = await import('node:path');
  const { spec, tensors } = engineWeights(model.manifest, readModelFile(join(model.dir, 'model.int8.onnx')));
  const attempt = (change: (t: typeof tensors) => void, specChange: Partial<typeof spec> = {}) => {
    const copy = { ...tensors };
    change(copy);
    return () => new addon.Engine({ ...spec, ...specChange }, copy, { threads: 1 });
  };
  assert.throws(
    attempt((t) => delete t['layers.1.output.weight']),
    /missing tensor layers\.1\.output\.weight/,
  );
  assert.throws(
    attempt((t) => (t['layers.0.qkv.weight'] = (t['layers.0.qkv.weight'] as Int8Array).subarray(1))),
    /layers\.0\.qkv\.weight has \d+ values, expected \d+/,
  );
  assert.throws(
    attempt((t) => (t['layers.0.qkv.scale'] = new Int8Array(t['layers.0.qkv.scale'].length))),
    /layers\.0\.qkv\.scale is int8, expected float32/,
  );
  assert.throws(
    attempt(() => {}, { hidden: spec.hidden + 1 }),
    /hidden must be a multiple of heads|has \d+ values/,
  );
  assert.throws(
    attempt(() => {}, { layers: 0 }),
    /layers must be in/,
  );
  assert.throws(() => new addon.Engine(spec, tensors, { threads: 0 }), /threads must be 1\.\.256/);
  assert.throws(
    () => new addon.Engine(spec, tensors, { threads: 1, isa: 'mmx' as never }),
    /unknown kernel path "mmx"/,
  );
});
