/**
 * Block orientation as the IntelLabs Model-Compression-Research-Package has it: a recipe's `block_dims` is [in, out]
 * and lands on the torch weight [out, in] swapped, so [1, 4] (Intel's "1x4 block") is 4 consecutive output channels
 * at one input. Recipe masks, the generator, its command line, and (when ../shared/models is here) the trained toy
 * checkpoints.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { encoderLinears, type Linear } from '../conversion/checkpoint/layout.js';
import { loadCheckpoint } from '../conversion/checkpoint/load-checkpoint.js';
import { ConversionError } from '../conversion/errors.js';
import { dimensionPresets, generateCheckpoint } from '../conversion/generate/random-checkpoint.js';
import { blockFromBlockDims, blockNotation, describeBlock, type PruningBlock } from '../conversion/sparsity/block.js';
import { applyPruningRecipe, magnitudeMask, magnitudePrune } from '../conversion/sparsity/prune.js';
import { parsePruningRecipe } from '../conversion/sparsity/recipe.js';
import { UsageError } from '../src/commands/flags.js';
import { generateCommand, generateUsage } from '../src/commands/generate-command.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('pruning-blocks');
const sharedModels = join(import.meta.dirname, '..', '..', 'shared', 'models');
const outputBlock4: PruningBlock = { outputs: 4, inputs: 1 };
const inputBlock4: PruningBlock = { outputs: 1, inputs: 4 };

function blockRecipe(name: string, kwargs: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const path = join(root, name);
  writeFileSync(
    path,
    JSON.stringify({ pruning_fn: 'block_structured_magnitude', pruning_fn_default_kwargs: kwargs, ...extra }),
  );
  return parsePruningRecipe(path);
}

/** Rows of a mask over a torch weight [out, in]. */
const rows = (mask: ArrayLike<number>, inFeatures: number) =>
  Array.from({ length: mask.length / inFeatures }, (_, r) =>
    Array.from(mask).slice(r * inFeatures, (r + 1) * inFeatures),
  );

/** Counts the blocks of a weight that are all zero; fails on a block that is only partly zero. */
function wholeZeroBlocks(data: Float32Array, outFeatures: number, inFeatures: number, block: PruningBlock): number {
  let zeroBlocks = 0;
  for (let r0 = 0; r0 < outFeatures; r0 += block.outputs) {
    for (let c0 = 0; c0 < inFeatures; c0 += block.inputs) {
      let zeros = 0;
      for (let r = r0; r < r0 + block.outputs; r++)
        for (let c = c0; c < c0 + block.inputs; c++) if (data[r * inFeatures + c] === 0) zeros++;
      assert.ok(
        zeros === 0 || zeros === block.outputs * block.inputs,
        `block of ${describeBlock(block)} at out ${r0}, in ${c0} is partly zero`,
      );
      if (zeros) zeroBlocks++;
    }
  }
  return zeroBlocks;
}

/** Whether every zero of the weight lies in a whole zero block. */
function onlyWholeBlocks(data: Float32Array, outFeatures: number, inFeatures: number, block: PruningBlock): boolean {
  try {
    wholeZeroBlocks(data, outFeatures, inFeatures, block);
    return true;
  } catch {
    return false;
  }
}

test("the package's own unit test: Linear(6, 4), block_dims (3, 2), max pooling, 50% gives its mask", () => {
  const recipe = blockRecipe('package-example.json', { target_sparsity: 0.5, block_dims: [3, 2], pooling_type: 'max' });
  // [in 3, out 2]: blocks of 2 output channels (torch rows) x 3 inputs (torch columns).
  assert.deepEqual(recipe.block, { outputs: 2, inputs: 3 });
  const weight = Float32Array.of(
    ...[1, 5, 1, 1, 1, 1],
    ...[1, 1, 1, 1, -2, 1],
    ...[1, 1, 1, 1, 1, -3],
    ...[1, 1, 1, 1, 1, 1],
  );
  const mask = magnitudeMask(weight, 4, 6, recipe.targetSparsity, { block: recipe.block, pooling: recipe.poolingType });
  assert.deepEqual(rows(mask, 6), [
    [1, 1, 1, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
  ]);
});

test('recipe block_dims [1, 4] prunes blocks of 4 consecutive output channels (torch rows) at one input column', () => {
  const recipe = blockRecipe('one-by-four.json', { target_sparsity: 0.5, block_dims: [1, 4] });
  assert.deepEqual(recipe.block, outputBlock4);
  assert.equal(blockNotation(recipe.block), '1x4');
  assert.equal(describeBlock(recipe.block), '4 consecutive output channels at one input');
  // torch weight [out 8, in 3]: six blocks of 4 rows x 1 column.
  // block (rows 0-3, col 0) avg 9 max 9 | (0-3, 1) avg 1 max 1 | (0-3, 2) avg 2.375 max 8
  // block (rows 4-7, col 0) avg 2 max 2 | (4-7, 1) avg 7 max 7 | (4-7, 2) avg 3     max 3
  const weight = () =>
    Float32Array.of(
      ...[9, 1, 0.5],
      ...[-9, 1, -8],
      ...[9, 1, 0.5],
      ...[-9, 1, 0.5],
      ...[2, 7, 3],
      ...[2, 7, 3],
      ...[2, -7, 3],
      ...[2, 7, 3],
    );
  const averaged = weight();
  assert.equal(magnitudePrune(averaged, 8, 3, recipe.targetSparsity, { block: recipe.block }), 12);
  assert.deepEqual(rows(averaged, 3), [
    [9, 0, 0],
    [-9, 0, 0],
    [9, 0, 0],
    [-9, 0, 0],
    [0, 7, 3],
    [0, 7, 3],
    [0, -7, 3],
    [0, 7, 3],
  ]);
  assert.equal(wholeZeroBlocks(averaged, 8, 3, outputBlock4), 3);
  const maxPooled = weight();
  magnitudePrune(maxPooled, 8, 3, recipe.targetSparsity, { block: recipe.block, pooling: 'max' });
  assert.deepEqual(
    rows(maxPooled, 3).map((row) => row.map((v) => (v === 0 ? 0 : 1))),
    [...Array(4).fill([1, 0, 1]), ...Array(4).fill([0, 1, 0])],
  );
  // The other orientation, 4 inputs of one output channel, does not even fit 3 inputs.
  assert.throws(() => magnitudePrune(weight(), 8, 3, 0.5, { block: inputBlock4 }), /3 inputs are not a multiple of 4/);
});

test('block_dims as the package reads it: an integer n is n x n, [n] is [1, n], [] is 1 x 1, no default block', () => {
  assert.deepEqual(blockFromBlockDims(2), { outputs: 2, inputs: 2 });
  assert.deepEqual(blockFromBlockDims([4]), outputBlock4);
  assert.deepEqual(blockFromBlockDims([4, 1]), inputBlock4);
  assert.deepEqual(blockFromBlockDims([]), { outputs: 1, inputs: 1 });
  assert.deepEqual(blockRecipe('default.json', { target_sparsity: 0.5 }).block, { outputs: 1, inputs: 1 });
  assert.deepEqual(blockRecipe('int.json', { target_sparsity: 0.5, block_dims: 4 }).block, { outputs: 4, inputs: 4 });
  assert.throws(() => blockFromBlockDims([1, 4, 1]), /3 dimensions/);
  assert.throws(() => blockFromBlockDims([1.5, 4]), /positive integer/);
  assert.throws(() => blockFromBlockDims('1x4'), /positive integer/);
});

test("the package's threshold: k = floor(sparsity x blocks), every block at or below the k-th score goes", () => {
  // Ties at the threshold all go: k = 2 of 4, threshold 1, three weights of magnitude 1.
  const ties = Float32Array.of(1, -1, 1, 5);
  assert.equal(magnitudePrune(ties, 1, 4, 0.5), 3);
  assert.deepEqual([...ties], [0, 0, 0, 5]);
  // k = int(0.2 x 4) = 0 prunes nothing.
  assert.equal(magnitudePrune(Float32Array.of(1, 2, 3, 4), 1, 4, 0.2), 0);
  // int(0.57 x 100) is 56 (0.57 x 100 = 56.99999999999999 in floating point).
  const hundred = Float32Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(magnitudePrune(hundred, 10, 10, 0.57), 56);
  // The generator's rule instead prunes exactly the nearest count, ties by position.
  const nearest = Float32Array.of(1, -1, 1, 5);
  assert.equal(magnitudePrune(nearest, 1, 4, 0.5, { count: 'nearest' }), 2);
  assert.deepEqual([...nearest], [0, 0, 1, 5]);
});

test('avg pooling sums |w| in float32 in row order, as torch does: blocks equal in float32 tie and both go', () => {
  // Blocks of 4 inputs. 1 + 2^-24 rounds back to 1 in float32 (a tie, to even), twice, so the first block averages
  // 0.25 like the second and both go at k = 1; summed in float64 it would average 0.25 + 2^-25 and survive.
  const weight = Float32Array.of(1, 2 ** -24, -(2 ** -24), 0, 1, 0, 0, 0);
  const block = blockFromBlockDims([4, 1]);
  assert.deepEqual(block, inputBlock4);
  assert.deepEqual([...magnitudeMask(weight, 1, 8, 0.5, { block })], [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('a weight the recipe block does not fit is an error naming "block_dims", the recipe file and the module', () => {
  const checkpoint = generateCheckpoint({
    outDir: join(root, 'ckpt-split'),
    family: 'bert',
    task: 'question-answering',
    dims: dimensionPresets.tiny,
    format: 'safetensors',
    seed: 3,
  });
  const recipe = blockRecipe('three.json', { target_sparsity: 0.5, block_dims: [1, 3] }, { not_to_prune: ['qa'] });
  const { model } = loadCheckpoint(checkpoint);
  assert.throws(
    () => applyPruningRecipe(model, recipe),
    (error: unknown) =>
      error instanceof ConversionError &&
      error.file === recipe.path &&
      error.problem.includes('"block_dims" [1,3] ([in, out]: blocks of 3 consecutive output channels at one input)') &&
      error.problem.includes('bert.encoder.layer.0.attention.self.query.weight') &&
      error.problem.includes('its 32 output channels are not a multiple of 3'),
  );
});

function generated(name: string, block: PruningBlock | undefined, seed = 11): string {
  return generateCheckpoint({
    outDir: join(root, name),
    family: 'bert',
    task: 'question-answering',
    dims: dimensionPresets.tiny,
    format: 'safetensors',
    seed,
    sparsity: 0.8,
    sparsityBlock: block,
  });
}

function encoderWeights(dir: string): Linear[] {
  return encoderLinears(loadCheckpoint(dir).model);
}

test('generated checkpoints: 1x4 zeroes 4 consecutive output channels at one input, 4x1 4 inputs of one output', () => {
  for (const [block, other] of [
    [outputBlock4, inputBlock4],
    [inputBlock4, outputBlock4],
  ]) {
    const dir = generated(`ckpt-${blockNotation(block)}`, block);
    for (const linear of encoderWeights(dir)) {
      const [outFeatures, inFeatures] = linear.weight.shape;
      const blocks = linear.weight.data.length / 4;
      const what = `${blockNotation(block)} ${linear.module}`;
      assert.equal(wholeZeroBlocks(linear.weight.data, outFeatures, inFeatures, block), Math.round(0.8 * blocks), what);
      assert.ok(!onlyWholeBlocks(linear.weight.data, outFeatures, inFeatures, other), `${what} also in ${other}`);
    }
  }
});

test('generate --block uses the recipe notation, is deterministic per seed, and rejects blocks that do not fit', async () => {
  const viaCli = join(root, 'cli-1x4');
  const log = console.log;
  console.log = () => {};
  try {
    generateCommand(['--out', viaCli, '--sparsity', '0.8', '--block', '1x4', '--seed', '11']);
  } finally {
    console.log = log;
  }
  const same = generated('api-1x4', outputBlock4);
  const bytes = (dir: string) => readFileSync(join(dir, 'model.safetensors'));
  assert.ok(bytes(viaCli).equals(bytes(same)), 'generate --block 1x4 is sparsityBlock { outputs: 4, inputs: 1 }');
  assert.ok(bytes(generated('api-1x4-again', outputBlock4)).equals(bytes(same)), 'same seed, same bytes');
  assert.ok(!bytes(generated('api-1x4-seed12', outputBlock4, 12)).equals(bytes(same)), 'another seed, other bytes');

  const usageError = (args: string[], fragment: RegExp) =>
    assert.throws(
      () => generateCommand(['--out', join(root, 'never'), ...args]),
      (error: unknown) => error instanceof UsageError && fragment.test(error.message),
    );
  usageError(
    ['--sparsity', '0.8', '--block', '1x3'],
    /--block 1x3 \(3 consecutive output channels at one input\): .*32 output channels are not a multiple of 3/,
  );
  usageError(['--sparsity', '0.8', '--block', '4'], /--block must be <in>x<out> such as 1x4, got "4"/);
  usageError(['--block', '1x4'], /--block needs --sparsity/);
  assert.ok(!existsSync(join(root, 'never')));
});

test('generate --help says which axis --block 1x4 and 4x1 run along', async () => {
  const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'generate', '--help']);
  assert.equal(stdout.trim(), generateUsage.trim());
  const help = stdout.replace(/\s+/g, ' ');
  assert.ok(help.includes('--block <in>x<out>'), help);
  assert.ok(
    help.includes(`1x4: 4 consecutive output channels at one input (Intel's "1x4 block" Prune OFA checkpoints`),
  );
  assert.ok(help.includes('4x1: 4 consecutive inputs of one output channel'));
});

const sharedModel = (name: string) => join(sharedModels, name);
const absent = (...names: string[]) => {
  const missing = names.map(sharedModel).filter((path) => !existsSync(path));
  return missing.length ? `${missing.join(', ')} absent (../shared/models is not part of the repository)` : false;
};

test(
  "trained toy checkpoints: block_dims [1, 4] at 80% is the pattern of sparse80-outblock4 (Intel's), [4, 1] of sparse80-1x4",
  { skip: absent('conll-ner-toy-sparse80-outblock4', 'conll-ner-toy-sparse80-1x4') },
  () => {
    const intel = blockRecipe(
      'intel.json',
      { target_sparsity: 0.8, block_dims: [1, 4] },
      { not_to_prune: ['classifier'] },
    );
    const inputs = blockRecipe(
      'inputs.json',
      { target_sparsity: 0.8, block_dims: [4, 1] },
      { not_to_prune: ['classifier'] },
    );
    const zerosAfter = (folder: string, recipe: ReturnType<typeof blockRecipe>) => {
      const { model } = loadCheckpoint(sharedModel(folder));
      const before = encoderLinears(model).map((l) => l.weight.data.filter((v) => v === 0).length);
      applyPruningRecipe(model, recipe);
      const after = encoderLinears(model).map((l) => l.weight.data.filter((v) => v === 0).length);
      return { before, after };
    };
    // Re-pruning a checkpoint with the recipe that made its pattern changes nothing: its zero blocks are the
    // lowest-scoring 80%.
    const outblock = zerosAfter('conll-ner-toy-sparse80-outblock4', intel);
    assert.deepEqual(outblock.after, outblock.before);
    const inblock = zerosAfter('conll-ner-toy-sparse80-1x4', inputs);
    assert.deepEqual(inblock.after, inblock.before);
    // With the other orientation, the 4-input checkpoint loses more weights: its zeros are not in output blocks.
    const crossed = zerosAfter('conll-ner-toy-sparse80-1x4', intel);
    assert.ok(crossed.after.every((zeros, i) => zeros > crossed.before[i]));
  },
);
