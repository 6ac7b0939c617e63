import type { Linear, ModelWeights } from '../checkpoint/layout.js';
import { allLinears } from '../checkpoint/layout.js';
import { ConversionError } from '../errors.js';
import { BlockSplitError, blockDimsOf, describeBlock, unstructuredBlock, type PruningBlock } from './block.js';
import { matchesAny, type PruningRecipe } from './recipe.js';

export type Pooling = 'avg' | 'max';

/**
 * Block scores of a torch weight [outFeatures, inFeatures] (row-major), one per block, blocks in row-major order
 * over the grid of blocks. As the package pools |w| with torch's max_pool2d / avg_pool2d (kernel = stride = block):
 * `max` is the largest magnitude; `avg` sums the magnitudes in float32, row by row, and divides the float32 sum by
 * the block size, as torch's CPU and CUDA kernels do, so that near-ties resolve exactly as they do there.
 */
export function blockScores(
  data: Float32Array,
  outFeatures: number,
  inFeatures: number,
  block: PruningBlock = unstructuredBlock,
  pooling: Pooling = 'avg',
): Float32Array {
  if (data.length !== outFeatures * inFeatures) {
    throw new Error(
      `a weight [out ${outFeatures}, in ${inFeatures}] needs ${outFeatures * inFeatures} values, got ${data.length}`,
    );
  }
  if (outFeatures % block.outputs !== 0 || inFeatures % block.inputs !== 0) {
    throw new BlockSplitError(block, outFeatures, inFeatures);
  }
  const blockRows = outFeatures / block.outputs;
  const blockCols = inFeatures / block.inputs;
  const size = block.outputs * block.inputs;
  const scores = new Float32Array(blockRows * blockCols);
  for (let br = 0; br < blockRows; br++) {
    for (let bc = 0; bc < blockCols; bc++) {
      let sum = 0;
      let max = 0;
      for (let r = br * block.outputs; r < (br + 1) * block.outputs; r++) {
        const row = r * inFeatures;
        for (let c = bc * block.inputs; c < (bc + 1) * block.inputs; c++) {
          const magnitude = Math.abs(data[row + c]);
          sum = Math.fround(sum + magnitude);
          if (magnitude > max) max = magnitude;
        }
      }
      scores[br * blockCols + bc] = pooling === 'avg' ? Math.fround(sum / size) : max;
    }
  }
  return scores;
}

export interface MagnitudeOptions {
  /** Default 1 x 1 (unstructured). */
  block?: PruningBlock;
  /** How a block is scored from |w|; default avg, as in the package. */
  pooling?: Pooling;
  /**
   * How many blocks go. `recipe` (default) is the package's rule: k = floor(sparsity x blocks) (Python's `int()`),
   * the threshold is the k-th smallest block score, and every block scoring at or below it goes, so ties at the
   * threshold all go and more than k blocks can (a block survives only when its score is strictly greater); k = 0
   * prunes nothing. `nearest` prunes exactly round(sparsity x blocks) blocks, lowest scores first, ties by position:
   * the generator's rule, so that a generated checkpoint has the sparsity it was asked for.
   */
  count?: 'recipe' | 'nearest';
}

/**
 * The one-shot magnitude mask of a torch weight [outFeatures, inFeatures]: 1 keeps a weight, 0 prunes it. With the
 * default `count: 'recipe'` it is the package's `block_structured_magnitude` mask (and `unstructured_magnitude`'s,
 * its 1 x 1 case) at that sparsity with no threshold history (`threshold_decay` only blends thresholds across the
 * steps of a schedule).
 */
export function magnitudeMask(
  data: Float32Array,
  outFeatures: number,
  inFeatures: number,
  sparsity: number,
  options: MagnitudeOptions = {},
): Uint8Array {
  const { block = unstructuredBlock, pooling = 'avg', count = 'recipe' } = options;
  if (!(sparsity >= 0 && sparsity <= 1)) throw new Error(`sparsity must be in [0, 1], got ${sparsity}`);
  const scores = blockScores(data, outFeatures, inFeatures, block, pooling);
  const mask = new Uint8Array(data.length).fill(1);
  const k = count === 'recipe' ? Math.trunc(sparsity * scores.length) : Math.round(sparsity * scores.length);
  if (k === 0) return mask;
  const threshold = Float32Array.from(scores).sort()[k - 1];
  const blockCols = inFeatures / block.inputs;
  let pruned = 0;
  const pruneBlock = (b: number) => {
    const r0 = Math.floor(b / blockCols) * block.outputs;
    const c0 = (b % blockCols) * block.inputs;
    for (let r = r0; r < r0 + block.outputs; r++) mask.fill(0, r * inFeatures + c0, r * inFeatures + c0 + block.inputs);
    pruned++;
  };
  if (count === 'recipe') {
    for (let b = 0; b < scores.length; b++) if (scores[b] <= threshold) pruneBlock(b);
    return mask;
  }
  for (let b = 0; b < scores.length; b++) if (scores[b] < threshold) pruneBlock(b);
  for (let b = 0; b < scores.length && pruned < k; b++) if (scores[b] === threshold) pruneBlock(b);
  return mask;
}

/**
 * Zeroes a torch weight [outFeatures, inFeatures] in place with the one-shot magnitude mask (see `magnitudeMask`).
 * Weights that are already zero stay zero: the mask multiplies. Returns how many weights the mask prunes (zero or
 * not).
 */
export function magnitudePrune(
  data: Float32Array,
  outFeatures: number,
  inFeatures: number,
  sparsity: number,
  options: MagnitudeOptions = {},
): number {
  const mask = magnitudeMask(data, outFeatures, inFeatures, sparsity, options);
  let pruned = 0;
  for (let i = 0; i < data.length; i++) {
    if (mask[i]) continue;
    data[i] = 0;
    pruned++;
  }
  return pruned;
}

export interface PruneReport {
  prunedModules: string[];
  skippedModules: string[];
}

/** Applies a recipe one-shot to every Linear it covers. Mutates the weights: callers pass their own copy. */
export function applyPruningRecipe(model: ModelWeights, recipe: PruningRecipe): PruneReport {
  const report: PruneReport = { prunedModules: [], skippedModules: [] };
  for (const linear of allLinears(model)) {
    if (matchesAny(linear.module, recipe.notToPrune)) {
      report.skippedModules.push(linear.module);
      continue;
    }
    // pattern_lock keeps the zeros the checkpoint already has: nothing to do at conversion time.
    if (recipe.pruningFn !== 'pattern_lock') pruneLinear(linear, recipe);
    report.prunedModules.push(linear.module);
  }
  return report;
}

function pruneLinear(linear: Linear, recipe: PruningRecipe): void {
  const [outFeatures, inFeatures] = linear.weight.shape;
  try {
    magnitudePrune(linear.weight.data, outFeatures, inFeatures, recipe.targetSparsity, {
      block: recipe.block,
      pooling: recipe.poolingType,
    });
  } catch (error) {
    if (!(error instanceof BlockSplitError)) throw error;
    throw new ConversionError(
      recipe.path,
      `"block_dims" ${JSON.stringify(blockDimsOf(recipe.block))} ([in, out]: blocks of ${describeBlock(recipe.block)}) does not fit ${linear.module}.weight: ${error.message}`,
    );
  }
}
