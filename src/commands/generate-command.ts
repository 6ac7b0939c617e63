import { parseArgs } from 'node:util';
import type { Family, Task } from '../../conversion/checkpoint/model-config.js';
import { dimensionPresets, generateCheckpoint } from '../../conversion/generate/random-checkpoint.js';
import { blockSplitProblem, describeBlock, parseBlockNotation } from '../../conversion/sparsity/block.js';
import { UsageError, numberFlag } from './flags.js';

export const generateUsage = `sbs generate --out <dir> [options]

Writes a seeded random-init checkpoint in Hugging Face layout (for tests and benchmarks: its answers are meaningless).
  --family bert|distilbert         (default bert)
  --task qa|classification|ner     (default qa)
  --size tiny|small|base|large     dimension preset (default tiny; DistilBERT gets half the layers); --hidden/--layers/--heads/--intermediate override
  --format safetensors|pytorch     model.safetensors or pytorch_model.bin (default safetensors)
  --labels A,B,...                 classification/NER labels (default SST-2 or CoNLL-2003 labels)
  --tokenizer <dir>                use a real tokenizer.json/vocab.txt from this folder (default: small synthetic vocab)
  --sparsity <0..1>                magnitude-prune encoder Linear weights, as a Prune OFA checkpoint arrives
  --block <in>x<out>               prune in blocks, written as a recipe's block_dims [in, out] and Intel's model names
                                   (with --sparsity; default 1x1, unstructured):
                                   1x4: 4 consecutive output channels at one input (Intel's "1x4 block" Prune OFA
                                        checkpoints, recipe block_dims [1, 4])
                                   4x1: 4 consecutive inputs of one output channel
  --seed <n>                       (default 42)`;

const tasks: Record<string, Task> = {
  qa: 'question-answering',
  'question-answering': 'question-answering',
  classification: 'text-classification',
  'text-classification': 'text-classification',
  ner: 'token-classification',
  'token-classification': 'token-classification',
};

export function generateCommand(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      family: { type: 'string', default: 'bert' },
      task: { type: 'string', default: 'qa' },
      size: { type: 'string', default: 'tiny' },
      hidden: { type: 'string' },
      layers: { type: 'string' },
      heads: { type: 'string' },
      intermediate: { type: 'string' },
      format: { type: 'string', default: 'safetensors' },
      labels: { type: 'string' },
      tokenizer: { type: 'string' },
      sparsity: { type: 'string' },
      block: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (!values.out) throw new UsageError('--out <dir> is required', generateUsage);
  const preset = dimensionPresets[values.size];
  if (!preset) throw new UsageError(`--size must be one of ${Object.keys(dimensionPresets).join(', ')}`, generateUsage);
  const task = tasks[values.task];
  if (!task) throw new UsageError('--task must be qa, classification or ner', generateUsage);
  if (values.family !== 'bert' && values.family !== 'distilbert')
    throw new UsageError('--family must be bert or distilbert', generateUsage);
  if (values.format !== 'safetensors' && values.format !== 'pytorch')
    throw new UsageError('--format must be safetensors or pytorch', generateUsage);
  const int = (value: string | undefined, flag: string) => numberFlag(value, flag, { min: 1, integer: true });
  const dims = {
    hiddenSize: int(values.hidden, '--hidden') ?? preset.hiddenSize,
    // DistilBERT keeps every other layer of its teacher: 6 for the base size.
    numLayers:
      int(values.layers, '--layers') ??
      (values.family === 'distilbert' && values.size !== 'tiny' ? preset.numLayers / 2 : preset.numLayers),
    numHeads: int(values.heads, '--heads') ?? preset.numHeads,
    intermediateSize: int(values.intermediate, '--intermediate') ?? preset.intermediateSize,
    maxPositions: preset.maxPositions,
  };
  if (dims.hiddenSize % dims.numHeads !== 0)
    throw new UsageError('--hidden must be divisible by --heads', generateUsage);
  const block = parseBlockNotation(values.block ?? '1x1');
  if (!block) throw new UsageError(`--block must be <in>x<out> such as 1x4, got "${values.block}"`, generateUsage);
  if (values.block !== undefined && values.sparsity === undefined)
    throw new UsageError('--block needs --sparsity', generateUsage);
  for (const [outFeatures, inFeatures] of [
    [dims.hiddenSize, dims.hiddenSize],
    [dims.intermediateSize, dims.hiddenSize],
    [dims.hiddenSize, dims.intermediateSize],
  ]) {
    const problem = blockSplitProblem(block, outFeatures, inFeatures);
    if (problem) throw new UsageError(`--block ${values.block} (${describeBlock(block)}): ${problem}`, generateUsage);
  }
  const dir = generateCheckpoint({
    outDir: values.out,
    family: values.family as Family,
    task,
    dims,
    format: values.format,
    seed: numberFlag(values.seed, '--seed', { integer: true }) ?? 42,
    labels: values.labels?.split(',').map((label) => label.trim()),
    tokenizerDir: values.tokenizer,
    sparsity: numberFlag(values.sparsity, '--sparsity', { min: 0, maxExclusive: 1 }),
    sparsityBlock: block,
  });
  console.log(`wrote ${dir}`);
}
