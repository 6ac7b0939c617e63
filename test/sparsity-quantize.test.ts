import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConversionError } from '../conversion/errors.js';
import { quantizeLinearWeightTransposed, quantizeRows } from '../conversion/quantize/int8.js';
import { magnitudePrune } from '../conversion/sparsity/prune.js';
import { parsePruningRecipe, parseQuantizationRecipe } from '../conversion/sparsity/recipe.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('recipes');

test('unstructured magnitude pruning keeps the largest weights; weights already zero stay zero', () => {
  const data = Float32Array.from({ length: 100 }, (_, i) => (i % 2 ? 1 : -1) * (i + 1));
  magnitudePrune(data, 10, 10, 0.9);
  const kept = [...data]
    .filter((v) => v !== 0)
    .map(Math.abs)
    .sort((a, b) => a - b);
  assert.deepEqual(kept, [91, 92, 93, 94, 95, 96, 97, 98, 99, 100]);

  const alreadySparse = new Float32Array(100);
  alreadySparse.set([5, -4, 3, 2], 0);
  magnitudePrune(alreadySparse, 10, 10, 0.97);
  assert.deepEqual([...alreadySparse.slice(0, 4)], [5, -4, 3, 0]);
});

test('block pruning scores blocks of 4 consecutive inputs (recipe block_dims [4, 1]) by average or max magnitude', () => {
  // One output channel, three blocks: averages 1, 10 and 2.5; pruning a third removes the first block only.
  const fourInputs = { outputs: 1, inputs: 4 };
  const data = Float32Array.of(1, 1, 1, 1, 10, -10, 10, -10, 0, 0, 0, 10);
  magnitudePrune(data, 1, 12, 1 / 3, { block: fourInputs, pooling: 'avg' });
  assert.deepEqual([...data], [0, 0, 0, 0, 10, -10, 10, -10, 0, 0, 0, 10]);
  const maxPooled = Float32Array.of(1, 1, 1, 1, 10, -10, 10, -10, 0, 0, 0, 10);
  magnitudePrune(maxPooled, 1, 12, 1 / 3, { block: fourInputs, pooling: 'max' });
  assert.deepEqual([...maxPooled], [0, 0, 0, 0, 10, -10, 10, -10, 0, 0, 0, 10]);
});

test('int8 weights: symmetric per output channel, zeros stay zero, the channel maximum maps to ±127', () => {
  // torch layout [out=2, in=3]
  const weight = Float32Array.of(0, 0.25, -1, 0.02, 0, -0.005);
  const { values, scales } = quantizeLinearWeightTransposed(weight, 2, 3);
  assert.deepEqual(
    [...scales].map((s) => +s.toPrecision(6)),
    [+(1 / 127).toPrecision(6), +(0.02 / 127).toPrecision(6)],
  );
  // MatMul layout [in=3, out=2]
  assert.deepEqual([...values], [0, 127, 32, 0, -127, -32]);
  const empty = quantizeLinearWeightTransposed(new Float32Array(4), 2, 2);
  assert.deepEqual([...empty.values], [0, 0, 0, 0]);
  assert.ok(empty.scales.every((s) => s > 0));
  const rows = quantizeRows(Float32Array.of(2, -0.5, 0, 0.5), 2, 2);
  assert.deepEqual([...rows.values], [127, -32, 0, 127]);
});

function recipe(name: string, content: object): string {
  const path = join(root, name);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

test('recipes in the Intel format parse; unknown keys and bad values are named', () => {
  const lock = parsePruningRecipe(
    recipe('lock.json', {
      not_to_prune: ['qa_outputs', 'pooler'],
      pruning_fn: 'pattern_lock',
      scheduler: 'one_shot',
      prune_layer_types: { Linear: { name: 'weight' }, QuantizedLinear: { name: 'weight' } },
    }),
  );
  assert.equal(lock.pruningFn, 'pattern_lock');
  assert.deepEqual(lock.notToPrune, ['qa_outputs', 'pooler']);
  const block = parsePruningRecipe(
    recipe('block.json', {
      pruning_fn: 'block_structured_magnitude',
      pruning_fn_default_kwargs: { target_sparsity: 0.8, block_dims: [1, 4] },
    }),
    0.9,
  );
  assert.equal(block.targetSparsity, 0.9);
  // block_dims is [in, out]: [1, 4] is 4 consecutive output channels at one input.
  assert.deepEqual(block.block, { outputs: 4, inputs: 1 });
  const quantization = parseQuantizationRecipe(
    recipe('q.json', {
      quantization_begin: 0,
      not_to_requantize_output: ['output.dense', 'value', 'qa_outputs'],
      not_to_quantize: ['teacher'],
    }),
  );
  assert.deepEqual(quantization.notToQuantize, ['teacher']);

  const expectError = (path: string, fragment: RegExp) =>
    assert.throws(
      () => parsePruningRecipe(path),
      (error: unknown) => error instanceof ConversionError && error.file === path && fragment.test(error.problem),
    );
  expectError(
    recipe('typo.json', { pruning_fn: 'unstructured_magnitude', pruning_fn_default_kwargs: { target_sparsty: 0.9 } }),
    /unknown recipe key "target_sparsty"/,
  );
  expectError(
    recipe('fn.json', { pruning_fn: 'movement', pruning_fn_default_kwargs: { target_sparsity: 0.9 } }),
    /"pruning_fn" "movement" is not supported/,
  );
  expectError(
    recipe('range.json', { pruning_fn: 'unstructured_magnitude', pruning_fn_default_kwargs: { target_sparsity: 1.5 } }),
    /target_sparsity/,
  );
  expectError(
    recipe('layers.json', {
      pruning_fn: 'unstructured_magnitude',
      pruning_fn_default_kwargs: { target_sparsity: 0.5 },
      prune_layer_types: { Embedding: { name: 'weight' } },
    }),
    /prune_layer_types/,
  );
  expectError(
    recipe('dims3.json', {
      pruning_fn: 'block_structured_magnitude',
      pruning_fn_default_kwargs: { target_sparsity: 0.5, block_dims: [1, 4, 1] },
    }),
    /"block_dims" has 3 dimensions but a Linear weight has 2/,
  );
  expectError(
    recipe('dims0.json', {
      pruning_fn: 'block_structured_magnitude',
      pruning_fn_default_kwargs: { target_sparsity: 0.5, block_dims: [0, 4] },
    }),
    /"block_dims" must be a positive integer or a list \[in, out\]/,
  );
  expectError(join(root, 'absent.json'), /not found/);
  assert.throws(
    () => parseQuantizationRecipe(recipe('qtypo.json', { not_to_quantise: [] })),
    /unknown recipe key "not_to_quantise"/,
  );
});
