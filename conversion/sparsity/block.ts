/**
 * A pruning block named by the axes of a Linear layer, so that its orientation cannot be misread: `outputs`
 * consecutive output channels (rows of the torch weight [out, in]) by `inputs` consecutive input positions (columns).
 *
 * Recipes (IntelLabs Model-Compression-Research-Package, Prune OFA) write `block_dims` in the mathematical
 * [in, out] order; the package swaps it onto the torch weight [out, in] ("pytorch transposes the input and output
 * channels", `handle_block_pruning_dims`). So `block_dims [1, 4]`, the "1x4 block" of Intel's model names, is
 * 4 consecutive output channels at one input position, and `[4, 1]` is 4 consecutive inputs of one output channel.
 */
export interface PruningBlock {
  /** Consecutive output channels (rows of the torch weight [out, in]) in one block. */
  readonly outputs: number;
  /** Consecutive input positions (columns of the torch weight [out, in]) in one block. */
  readonly inputs: number;
}

export const unstructuredBlock: PruningBlock = Object.freeze({ outputs: 1, inputs: 1 });

const positiveInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 1;

/**
 * Reads a recipe's `block_dims` as the package does: a plain integer n is an n x n block; a list is [in, out],
 * where a shorter list is padded with ones in front (so `[n]` is `[1, n]`: n output channels at one input, and
 * `[]` is 1 x 1). A Linear weight has two dimensions, so a longer list is an error. Throws an Error whose
 * message describes the problem (callers add the file and field).
 */
export function blockFromBlockDims(value: unknown): PruningBlock {
  if (positiveInteger(value)) return { outputs: value, inputs: value };
  if (!Array.isArray(value) || !value.every(positiveInteger)) {
    throw new Error(
      `must be a positive integer or a list [in, out] of positive integers, got ${JSON.stringify(value)}`,
    );
  }
  if (value.length > 2) {
    throw new Error(
      `has ${value.length} dimensions but a Linear weight has 2 (block_dims is [in, out]), got ${JSON.stringify(value)}`,
    );
  }
  const [inputs, outputs] = [1, 1, ...value].slice(-2) as [number, number];
  return { outputs, inputs };
}

/** The recipe's `block_dims` for a block: [in, out]. */
export function blockDimsOf(block: PruningBlock): [number, number] {
  return [block.inputs, block.outputs];
}

/** The notation of recipes, Intel's model names and `generate --block`: "<inputs>x<outputs>", so [1, 4] is "1x4". */
export function blockNotation(block: PruningBlock): string {
  return `${block.inputs}x${block.outputs}`;
}

/** Parses "<inputs>x<outputs>" (the recipe's block_dims [in, out] written as in Intel's model names); undefined if malformed. */
export function parseBlockNotation(text: string): PruningBlock | undefined {
  const match = /^(\d+)x(\d+)$/.exec(text.trim());
  if (!match) return undefined;
  const [inputs, outputs] = [Number(match[1]), Number(match[2])];
  return inputs >= 1 && outputs >= 1 ? { outputs, inputs } : undefined;
}

/** The block in plain words, naming the axis: "4 consecutive output channels at one input". */
export function describeBlock(block: PruningBlock): string {
  const { outputs, inputs } = block;
  if (outputs === 1 && inputs === 1) return 'single weights (unstructured)';
  if (inputs === 1) return `${outputs} consecutive output channels at one input`;
  if (outputs === 1) return `${inputs} consecutive inputs of one output channel`;
  return `${outputs} consecutive output channels x ${inputs} consecutive inputs`;
}

/** Why a weight [out, in] cannot be split into whole blocks, or undefined when it can. */
export function blockSplitProblem(block: PruningBlock, outFeatures: number, inFeatures: number): string | undefined {
  const problems: string[] = [];
  if (outFeatures % block.outputs !== 0)
    problems.push(`its ${outFeatures} output channels are not a multiple of ${block.outputs}`);
  if (inFeatures % block.inputs !== 0) problems.push(`its ${inFeatures} inputs are not a multiple of ${block.inputs}`);
  if (!problems.length) return undefined;
  return `a weight [out ${outFeatures}, in ${inFeatures}] cannot be split into blocks of ${describeBlock(block)}: ${problems.join(' and ')}`;
}

/** Thrown by the pruning routines when a weight cannot be split into whole blocks; callers name their field. */
export class BlockSplitError extends Error {
  constructor(
    readonly block: PruningBlock,
    readonly outFeatures: number,
    readonly inFeatures: number,
  ) {
    super(blockSplitProblem(block, outFeatures, inFeatures));
    this.name = 'BlockSplitError';
  }
}
