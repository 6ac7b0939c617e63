import type { Linear, ModelWeights } from '../checkpoint/layout.js';
import { allLinears } from '../checkpoint/layout.js';
import { matchesAny, type PruningRecipe } from './recipe.js';

/**
 * Zeroes the lowest-scoring blocks of a torch weight [rows, cols] in place so that at least `sparsity` of the
 * elements are zero. Blocks are `blockRows x blockCols`; a block's score is the avg or max of its |w|.
 * Already-zero weights stay zero (Prune OFA checkpoints arrive sparse).
 */
export function magnitudePrune(
  data: Float32Array,
  rows: number,
  cols: number,
  sparsity: number,
  blockDims: [number, number] = [1, 1],
  pooling: 'avg' | 'max' = 'avg',
): void {
  const [blockRows, blockCols] = blockDims;
  if (rows % blockRows !== 0 || cols % blockCols !== 0) {
    throw new Error(`a [${rows}, ${cols}] weight cannot be split into ${blockRows}x${blockCols} blocks`);
  }
  const blocksPerRow = cols / blockCols;
  const blockCount = (rows / blockRows) * blocksPerRow;
  const scores = new Float32Array(blockCount);
  for (let b = 0; b < blockCount; b++) {
    const r0 = Math.floor(b / blocksPerRow) * blockRows;
    const c0 = (b % blocksPerRow) * blockCols;
    let sum = 0;
    let max = 0;
    for (let r = r0; r < r0 + blockRows; r++) {
      for (let c = c0; c < c0 + blockCols; c++) {
        const magnitude = Math.abs(data[r * cols + c]);
        sum += magnitude;
        if (magnitude > max) max = magnitude;
      }
    }
    scores[b] = pooling === 'avg' ? sum / (blockRows * blockCols) : max;
  }
  const toPrune = Math.round(sparsity * blockCount);
  if (toPrune === 0) return;
  // Prune by rank, not by a bare threshold, so the target is hit exactly even when many scores tie (e.g. at zero).
  const threshold = Float32Array.from(scores).sort()[toPrune - 1];
  let pruned = 0;
  const pruneBlock = (b: number) => {
    const r0 = Math.floor(b / blocksPerRow) * blockRows;
    const c0 = (b % blocksPerRow) * blockCols;
    for (let r = r0; r < r0 + blockRows; r++) data.fill(0, r * cols + c0, r * cols + c0 + blockCols);
    pruned++;
  };
  for (let b = 0; b < blockCount; b++) if (scores[b] < threshold) pruneBlock(b);
  for (let b = 0; b < blockCount && pruned < toPrune; b++) if (scores[b] === threshold) pruneBlock(b);
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
  const [rows, cols] = linear.weight.shape;
  magnitudePrune(linear.weight.data, rows, cols, recipe.targetSparsity, recipe.blockDims, recipe.poolingType);
}
