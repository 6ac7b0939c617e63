import { existsSync, readFileSync } from 'node:fs';
import { ConversionError } from '../errors.js';
import { blockFromBlockDims, unstructuredBlock, type PruningBlock } from './block.js';

/**
 * Recipes in the IntelLabs Model-Compression-Research-Package JSON format (the one Prune OFA was trained with).
 * Schedule keys are accepted and recorded but a one-shot conversion has no steps to schedule.
 */
export interface PruningRecipe {
  /** The recipe file, for errors found when the recipe is applied. */
  path: string;
  pruningFn: 'unstructured_magnitude' | 'block_structured_magnitude' | 'pattern_lock';
  targetSparsity: number;
  /**
   * The block, by axis. `block_dims` is [in, out] as the package reads it: [1, 4] is 4 consecutive output channels
   * at one input (Intel's "1x4 block"); 1 x 1 for unstructured_magnitude and pattern_lock.
   */
  block: PruningBlock;
  poolingType: 'avg' | 'max';
  notToPrune: string[];
  source: Record<string, unknown>;
}

export interface QuantizationRecipe {
  notToQuantize: string[];
  notToRequantizeOutput: string[];
  source: Record<string, unknown>;
}

const scheduleKeys = [
  'begin_pruning_step',
  'end_pruning_step',
  'policy_begin_step',
  'policy_end_step',
  'pruning_frequency',
  'scheduler',
  'init_strategy',
  'prune_layer_types',
];
const pruningKeys = new Set([...scheduleKeys, 'pruning_fn', 'pruning_fn_default_kwargs', 'not_to_prune']);
const pruningKwargs = new Set([
  'initial_sparsity',
  'target_sparsity',
  'threshold_decay',
  'block_dims',
  'pooling_type',
  'fast_threshold',
]);
const quantizationKeys = new Set([
  'quantization_begin',
  'not_to_quantize',
  'not_to_requantize_output',
  'quantization_end',
  'mode',
]);

/** Module-name fragments kept fp32 by default: the task heads are tiny, and the recipes keep them out of compression. */
export const defaultQuantizationRecipe: QuantizationRecipe = {
  notToQuantize: ['qa_outputs', 'classifier', 'pre_classifier', 'pooler', 'teacher'],
  notToRequantizeOutput: ['output.dense', 'value', 'qa_outputs', 'classifier'],
  source: {},
};

function readRecipeFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConversionError(path, 'recipe file not found');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConversionError(path, `recipe is not valid JSON: ${(error as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConversionError(path, 'recipe must be a JSON object');
  return raw as Record<string, unknown>;
}

function rejectUnknown(path: string, raw: Record<string, unknown>, known: Set<string>, where: string): void {
  const unknown = Object.keys(raw).filter((key) => !known.has(key));
  if (unknown.length) {
    throw new ConversionError(
      path,
      `unknown recipe key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} in ${where}; known: ${[...known].join(', ')}`,
    );
  }
}

function stringList(path: string, value: unknown, key: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw new ConversionError(path, `"${key}" must be a list of strings`);
  return value as string[];
}

export function parsePruningRecipe(path: string, overrideSparsity?: number): PruningRecipe {
  const raw = readRecipeFile(path);
  rejectUnknown(path, raw, pruningKeys, 'the pruning recipe');
  const kwargs = (raw.pruning_fn_default_kwargs ?? {}) as Record<string, unknown>;
  rejectUnknown(path, kwargs, pruningKwargs, '"pruning_fn_default_kwargs"');
  const pruningFn = raw.pruning_fn;
  if (
    pruningFn !== 'unstructured_magnitude' &&
    pruningFn !== 'block_structured_magnitude' &&
    pruningFn !== 'pattern_lock'
  ) {
    throw new ConversionError(
      path,
      `"pruning_fn" ${JSON.stringify(pruningFn)} is not supported; use unstructured_magnitude, block_structured_magnitude or pattern_lock`,
    );
  }
  const targetSparsity = overrideSparsity ?? (kwargs.target_sparsity as number | undefined) ?? 0;
  if (typeof targetSparsity !== 'number' || !(targetSparsity >= 0 && targetSparsity < 1)) {
    throw new ConversionError(
      path,
      `"target_sparsity" must be a number in [0, 1), got ${JSON.stringify(targetSparsity)}`,
    );
  }
  if (pruningFn !== 'pattern_lock' && targetSparsity === 0)
    throw new ConversionError(path, '"pruning_fn_default_kwargs.target_sparsity" is required');
  let block = unstructuredBlock;
  if (pruningFn === 'block_structured_magnitude') {
    // The package's default block_dims is 1 (a 1 x 1 block).
    try {
      block = blockFromBlockDims(kwargs.block_dims ?? 1);
    } catch (error) {
      throw new ConversionError(path, `"block_dims" ${(error as Error).message}`);
    }
  }
  const poolingType = (kwargs.pooling_type as string | undefined) ?? 'avg';
  if (poolingType !== 'avg' && poolingType !== 'max')
    throw new ConversionError(path, `"pooling_type" must be avg or max`);
  const layerTypes = raw.prune_layer_types as Record<string, unknown> | undefined;
  if (layerTypes && Object.keys(layerTypes).some((t) => t !== 'Linear' && t !== 'QuantizedLinear')) {
    throw new ConversionError(
      path,
      `"prune_layer_types" may only name Linear and QuantizedLinear (embeddings are never pruned here)`,
    );
  }
  return {
    path,
    pruningFn,
    targetSparsity,
    block,
    poolingType,
    notToPrune: stringList(path, raw.not_to_prune, 'not_to_prune'),
    source: raw,
  };
}

export function parseQuantizationRecipe(path: string): QuantizationRecipe {
  const raw = readRecipeFile(path);
  rejectUnknown(path, raw, quantizationKeys, 'the quantization recipe');
  return {
    notToQuantize: stringList(path, raw.not_to_quantize, 'not_to_quantize'),
    notToRequantizeOutput: stringList(path, raw.not_to_requantize_output, 'not_to_requantize_output'),
    source: raw,
  };
}

/** The recipes' matching rule: a module is excluded when any listed fragment occurs in its name. */
export function matchesAny(module: string, fragments: readonly string[]): boolean {
  return fragments.some((fragment) => module.includes(fragment));
}
