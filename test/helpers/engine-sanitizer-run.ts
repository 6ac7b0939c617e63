/**
 * The child half of test/engine-sanitizers.test.ts: runs a sanitized build of the engine addon (SBS_ENGINE_ADDON)
 * through every kernel path, both sparse thresholds, ragged batches, bad batches and bad weights, on tiny models the
 * parent already converted (SBS_SANITIZER_MODELS: JSON [{ name, dir }]). Prints 'SANITIZED RUN OK' at the end.
 * It never loads onnxruntime-node: conversion (which verifies on onnxruntime) happens in the parent.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Manifest } from '../../conversion/manifest.js';
import {
  loadEngineAddon,
  type EngineAddon,
  type KernelPath,
  type LinearKernel,
} from '../../src/runtime/engine-addon.js';
import { EngineRunner } from '../../src/runtime/engine-runner.js';
import { engineWeights, type EngineSpec, type EngineTensors } from '../../src/runtime/engine-weights.js';
import { readModelFile } from '../../src/runtime/onnx-initializers.js';
import { int8ModelFile } from '../../conversion/manifest.js';
import type { BatchRow } from '../../src/batcher/batcher.js';

interface Model {
  name: string;
  dir: string;
  manifest: Manifest;
}

/** As randomRows in engine-fixtures.ts, which cannot be imported here: it loads onnxruntime-node. */
function randomRows(lengths: number[], vocab: number, seed = 1): BatchRow[] {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31), state);
  return lengths.map((length) => ({
    ids: Array.from({ length }, (_, i) => (i === 0 ? 2 : i === length - 1 ? 3 : 5 + (next() % (vocab - 5)))),
    typeIds: Array.from({ length }, (_, i) => (i < length / 2 ? 0 : 1)),
  }));
}

const log = (line: string) => console.log(`[sanitized] ${line}`);

function loadAddon(): EngineAddon {
  const path = process.env.SBS_ENGINE_ADDON;
  assert.ok(path, 'SBS_ENGINE_ADDON is not set');
  const status = loadEngineAddon(path);
  assert.ok(status.available, `the sanitized addon does not load: ${status.available ? '' : status.reason}`);
  return status.addon;
}

function loadModels(): Model[] {
  const raw = process.env.SBS_SANITIZER_MODELS;
  assert.ok(raw, 'SBS_SANITIZER_MODELS is not set');
  const list = JSON.parse(raw) as { name: string; dir: string }[];
  assert.ok(list.length > 0, 'no models to run');
  return list.map(({ name, dir }) => ({
    name,
    dir,
    manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest,
  }));
}

/** Ragged batches crossing the 16-token block and 64-token tile boundaries; every output finite, of the right size. */
async function raggedRuns(
  addon: EngineAddon,
  model: Model,
  isa: KernelPath,
  linearKernel: LinearKernel,
): Promise<void> {
  const engine = EngineRunner.create(addon, model.dir, model.manifest, {
    threads: isa === 'scalar' ? 1 : 2,
    isa,
    linearKernel,
  });
  try {
    assert.equal(engine.kernelPath, isa);
    const { vocabSize } = model.manifest.dimensions;
    const batches = [[1, 5, 64, 65, 100, 17], [1], [128, 3], [16, 15, 33, 2, 47]];
    for (const [b, lengths] of batches.entries()) {
      const rows = randomRows(lengths, vocabSize, 7 + b);
      const outputs = await engine.run(rows);
      assert.equal(outputs.length, rows.length);
      outputs.forEach((row, r) => {
        for (const [name, values] of Object.entries(row)) {
          assert.ok(values.length > 0, `${model.name} ${isa}/${linearKernel}: ${name} of row ${r} is empty`);
          if (model.manifest.task === 'question-answering')
            assert.equal(values.length, lengths[r], `${name} of row ${r}: length`);
          for (let i = 0; i < values.length; i++)
            assert.ok(
              Number.isFinite(values[i]),
              `${model.name} ${isa}/${linearKernel}: ${name}[${i}] of row ${r} is ${values[i]}`,
            );
        }
      });
    }
    // Rows without type ids take the zero-type path.
    const untyped = randomRows([9, 70], vocabSize, 3).map(({ ids }) => ({ ids }));
    for (const row of await engine.run(untyped))
      for (const values of Object.values(row)) assert.ok(values.every(Number.isFinite));
  } finally {
    await engine.release();
  }
}

/** Every refused batch of the engine-model test, plus a few more ways of getting offsets and types wrong. */
async function badBatches(addon: EngineAddon, model: Model): Promise<void> {
  const engine = EngineRunner.create(addon, model.dir, model.manifest, { threads: 2 });
  const native = engine.native;
  const { vocabSize: vocab, maxPositions } = model.manifest.dimensions;
  const hasTypes = engineWeights(model.manifest, readModelFile(join(model.dir, int8ModelFile))).spec.typeVocab > 0;
  const ids = (values: number[]) => Int32Array.from(values);
  try {
    const bad: [string, () => Promise<unknown>, RegExp][] = [
      ['empty batch', () => native.run(ids([]), null, ids([0])), /at least one row/],
      ['no offsets at all', () => native.run(ids([2, 3]), null, ids([])), /at least one row/],
      [
        'id past the vocabulary',
        () => native.run(ids([2, vocab, 3]), null, ids([0, 3])),
        new RegExp(`token id ${vocab} at position 1`),
      ],
      ['huge id', () => native.run(ids([2, 2 ** 31 - 1]), null, ids([0, 2])), /token id 2147483647/],
      ['negative id', () => native.run(ids([2, -1]), null, ids([0, 2])), /token id -1/],
      ['most negative id', () => native.run(ids([-(2 ** 31), 3]), null, ids([0, 2])), /token id -2147483648/],
      [
        'row longer than the position table',
        () => native.run(new Int32Array(maxPositions + 1).fill(5), null, ids([0, maxPositions + 1])),
        /position table holds/,
      ],
      ['empty row', () => native.run(ids([2, 3]), null, ids([0, 0, 2])), /row 0 is empty/],
      ['empty last row', () => native.run(ids([2, 3]), null, ids([0, 2, 2])), /row 1 is empty/],
      ['decreasing offsets', () => native.run(ids([2, 3, 4]), null, ids([0, 3, 1])), /row 1 is empty/],
      ['first offset not 0', () => native.run(ids([2, 3]), null, ids([1, 2])), /first offset must be 0/],
      ['negative first offset', () => native.run(ids([2, 3]), null, ids([-1, 2])), /first offset must be 0/],
      ['offsets past the ids', () => native.run(ids([2, 3]), null, ids([0, 5])), /last offset is 5 but there are 2/],
      [
        'offsets short of the ids',
        () => native.run(ids([2, 3, 4]), null, ids([0, 2])),
        /last offset is 2 but there are 3/,
      ],
      [
        'offsets overflowing int32',
        () => native.run(ids([2, 3]), null, ids([0, 2 ** 31 - 1, -(2 ** 31)])),
        /row 0 has 2147483647 tokens/,
      ],
      [
        'type ids of the wrong length',
        () => native.run(ids([2, 3]), ids([0]), ids([0, 2])),
        /typeIds: 1 values for 2 tokens/,
      ],
      [
        'type ids too long',
        () => native.run(ids([2, 3]), ids([0, 0, 0]), ids([0, 2])),
        /typeIds: 3 values for 2 tokens/,
      ],
      ['token type past the table', () => native.run(ids([2, 3]), ids([0, 7]), ids([0, 2])), /token type 7/],
      ['negative token type', () => native.run(ids([2, 3]), ids([-1, 0]), ids([0, 2])), /token type -1/],
      [
        'ids not an Int32Array',
        () => native.run([1, 2] as unknown as Int32Array, null, ids([0, 2])),
        /ids must be an Int32Array/,
      ],
      [
        'ids a Float32Array',
        () => native.run(Float32Array.from([2, 3]) as unknown as Int32Array, null, ids([0, 2])),
        /ids must be an Int32Array/,
      ],
      [
        'ids a Uint32Array',
        () => native.run(Uint32Array.from([2, 3]) as unknown as Int32Array, null, ids([0, 2])),
        /ids must be an Int32Array/,
      ],
      [
        'typeIds not an Int32Array',
        () => native.run(ids([2, 3]), 'x' as unknown as Int32Array, ids([0, 2])),
        /typeIds must be an Int32Array/,
      ],
      [
        'offsets not an Int32Array',
        () => native.run(ids([2, 3]), null, [0, 2] as unknown as Int32Array),
        /offsets must be an Int32Array/,
      ],
      [
        'offsets missing',
        () => (native.run as unknown as (...args: unknown[]) => Promise<unknown>)(ids([2, 3]), null),
        /offsets must be an Int32Array/,
      ],
      ['no arguments', () => (native.run as unknown as () => Promise<unknown>)(), /ids must be an Int32Array/],
    ];
    if (!hasTypes) {
      // Without a type table only type 0 exists.
      bad.push([
        'type 1 without a type table',
        () => native.run(ids([2, 3]), ids([0, 1]), ids([0, 2])),
        /token type 1/,
      ]);
    }
    for (const [what, run, message] of bad) await assert.rejects(run, message, `${model.name}: ${what}`);
    // A subarray view with a byte offset is read from its own start.
    const backing = new Int32Array([99999, 2, 5, 3]);
    const [viewRow] = await native.run(backing.subarray(1), null, ids([0, 3]));
    assert.ok(viewRow.every(Number.isFinite), `${model.name}: subarray view`);
    // Two runs at once: the second is refused or queued, never run on the same scratch.
    const both = await Promise.allSettled([
      native.run(ids([2, 5, 3]), null, ids([0, 3])),
      native.run(ids([2, 6, 3]), null, ids([0, 3])),
    ]);
    assert.equal(both[0].status, 'fulfilled', `${model.name}: first of two concurrent runs`);
    const [ok] = await engine.run(randomRows([8], vocab));
    for (const values of Object.values(ok))
      assert.ok(values.every(Number.isFinite), `${model.name}: engine still works`);
    assert.ok(native.info().layers.length > 0);
    assert.ok(native.profile().runs > 0);
  } finally {
    await engine.release();
  }
  await assert.rejects(
    () => native.run(ids([2, 3]), null, ids([0, 2])),
    /disposed/,
    `${model.name}: run after dispose`,
  );
  native.dispose(); // twice: harmless
}

/** Weight sets and specs that do not match are refused, naming the problem. */
function badWeights(addon: EngineAddon, model: Model): void {
  const { spec, tensors } = engineWeights(model.manifest, readModelFile(join(model.dir, int8ModelFile)));
  const names = Object.keys(tensors);
  const last = spec.layers - 1;
  const int8Name = names.find((name) => tensors[name] instanceof Int8Array && /^layers\.0\..*weight$/.test(name));
  const floatName = names.find(
    (name) => tensors[name] instanceof Float32Array && name.startsWith(`layers.${last}.`) && name.endsWith('.scale'),
  );
  const lastLayerBias = names.find((name) => name.startsWith(`layers.${last}.`) && name.endsWith('.bias'));
  assert.ok(int8Name && floatName && lastLayerBias, `${model.name}: tensors ${names.join(', ')}`);
  const attempt = (
    change: (t: EngineTensors) => void,
    specChange: Partial<EngineSpec> = {},
    options: object = { threads: 1 },
  ) => {
    const copy: EngineTensors = { ...tensors };
    change(copy);
    return () => new addon.Engine({ ...spec, ...specChange }, copy, options as { threads: number });
  };
  const escape = (name: string) => name.replace(/\./g, '\\.');
  const refusals: [string, () => unknown, RegExp][] = [
    ['missing tensor', attempt((t) => delete t[lastLayerBias]), new RegExp(`missing tensor ${escape(lastLayerBias)}`)],
    [
      'short int8 tensor',
      attempt((t) => (t[int8Name] = (t[int8Name] as Int8Array).subarray(1))),
      new RegExp(`${escape(int8Name)} has \\d+ values, expected \\d+`),
    ],
    [
      'long int8 tensor',
      attempt((t) => (t[int8Name] = new Int8Array(t[int8Name].length + 1))),
      new RegExp(`${escape(int8Name)} has \\d+ values, expected \\d+`),
    ],
    [
      'empty int8 tensor',
      attempt((t) => (t[int8Name] = new Int8Array(0))),
      new RegExp(`${escape(int8Name)} has 0 values`),
    ],
    [
      'int8 where float32 belongs',
      attempt((t) => (t[floatName] = new Int8Array(t[floatName].length))),
      new RegExp(`${escape(floatName)} is int8, expected float32`),
    ],
    [
      'float32 where int8 belongs',
      attempt((t) => (t[int8Name] = new Float32Array(t[int8Name].length))),
      new RegExp(`${escape(int8Name)} is float32, expected int8`),
    ],
    [
      'a Uint8Array',
      attempt((t) => (t[int8Name] = new Uint8Array(t[int8Name].length) as unknown as Int8Array)),
      /must be a Float32Array or an Int8Array/,
    ],
    ['not a typed array', attempt((t) => (t[int8Name] = [1, 2, 3] as unknown as Int8Array)), /must be a typed array/],
    [
      'zero scales',
      attempt((t) => (t[floatName] = new Float32Array(t[floatName].length))),
      /non-positive scale|has \d+ values/,
    ],
    [
      'NaN scales',
      attempt((t) => (t[floatName] = new Float32Array(t[floatName].length).fill(NaN))),
      /non-positive scale|has \d+ values/,
    ],
    [
      'hidden not a multiple of heads',
      attempt(() => {}, { hidden: spec.hidden + 1 }),
      /hidden must be a multiple of heads|has \d+ values/,
    ],
    ['no layers', attempt(() => {}, { layers: 0 }), /layers must be in/],
    ['too many layers', attempt(() => {}, { layers: spec.layers + 1 }), /missing tensor|layers must be in/],
    ['huge hidden', attempt(() => {}, { hidden: 2 ** 30 }), /hidden must be in|has \d+ values/],
    ['negative vocab', attempt(() => {}, { vocab: -1 } as Partial<EngineSpec>), /non-negative integer/],
    ['fractional heads', attempt(() => {}, { heads: 1.5 } as Partial<EngineSpec>), /non-negative integer/],
    ['string hidden', attempt(() => {}, { hidden: '32' as unknown as number }), /must be a number/],
    ['unknown task', attempt(() => {}, { task: 'summarization' as never }), /unknown task/],
    ['bad activation', attempt(() => {}, { activation: 'swish' } as unknown as Partial<EngineSpec>), /gelu or relu/],
    ['zero eps', attempt(() => {}, { layerNormEps: 0 } as Partial<EngineSpec>), /layer_norm_eps must be positive/],
    ['huge type vocab', attempt(() => {}, { typeVocab: 5000 }), /type_vocab must be in|missing tensor|has \d+ values/],
    ['zero threads', attempt(() => {}, {}, { threads: 0 }), /threads must be 1\.\.256/],
    ['unknown isa', attempt(() => {}, {}, { threads: 1, isa: 'mmx' }), /unknown kernel path "mmx"/],
    ['bad ops', attempt(() => {}, {}, { threads: 1, ops: 'sse' }), /avx512 or portable/],
    ['unknown linear kernel', attempt(() => {}, {}, { threads: 1, linearKernel: 'x' }), /linearKernel: auto, dense/],
    ['no arguments', () => new (addon.Engine as unknown as new () => unknown)(), /three objects expected/],
  ];
  for (const [what, run, message] of refusals) assert.throws(run, message, `${model.name}: ${what}`);
  // The genuine set still loads after all the refusals, and with the portable ops.
  new addon.Engine(spec, tensors, { threads: 1 }).dispose();
  const portable = new addon.Engine(spec, tensors, { threads: 1, ops: 'portable' } as { threads: number });
  portable.dispose();
}

/** The portable (non-AVX-512) element-wise ops on one ragged batch. */
async function portableOps(addon: EngineAddon, model: Model): Promise<void> {
  const { spec, tensors } = engineWeights(model.manifest, readModelFile(join(model.dir, int8ModelFile)));
  const native = new addon.Engine(spec, tensors, { threads: 2, ops: 'portable' } as { threads: number });
  try {
    const lengths = [1, 5, 64, 65, 100, 17];
    const rows = randomRows(lengths, spec.vocab, 4);
    const offsets = Int32Array.from([0, ...lengths.map((_, i) => lengths.slice(0, i + 1).reduce((a, b) => a + b))]);
    const ids = Int32Array.from(rows.flatMap((row) => row.ids));
    const planes = await native.run(ids, null, offsets);
    for (const plane of planes) assert.ok(plane.every(Number.isFinite), `${model.name}: portable ops`);
  } finally {
    native.dispose();
  }
}

async function main(): Promise<void> {
  const addon = loadAddon();
  const models = loadModels();
  const { supported, best, ops } = addon.cpuInfo();
  log(
    `kernel paths ${supported.join(', ')} (best ${best}, ops ${ops}); models ${models.map((m) => m.name).join(', ')}`,
  );
  assert.ok(supported.includes('scalar'));
  for (const model of models) {
    for (const isa of supported)
      for (const linearKernel of ['dense', 'sparse-quads', 'sparse-out-blocks'] as const) {
        await raggedRuns(addon, model, isa, linearKernel);
        log(`${model.name}: ${isa}, ${linearKernel}: ragged batches finite`);
      }
    if (ops === 'avx512') {
      await portableOps(addon, model);
      log(`${model.name}: portable ops finite`);
    }
    await badBatches(addon, model);
    log(`${model.name}: bad batches refused`);
    badWeights(addon, model);
    log(`${model.name}: bad weights refused`);
  }
  // onnxruntime's own native code is not meant to run under the sanitizers, nor needed: nothing here loaded it.
  const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('onnxruntime'));
  assert.deepEqual(loaded, [], 'onnxruntime-node was loaded in the sanitized child');
  console.log('SANITIZED RUN OK');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
