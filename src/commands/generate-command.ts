import { parseArgs } from 'node:util';
import type { Family, Task } from '../../conversion/checkpoint/model-config.js';
import { dimensionPresets, generateCheckpoint } from '../../conversion/generate/random-checkpoint.js';
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
  --block 1x4                      prune in blocks (rows x cols of the torch weight [out, in]; 1x4: 4 inputs of one
                                   output, the Intel "sparse-80-1x4-block" pattern); default 1x1 (unstructured)
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
  const block = /^(\d+)x(\d+)$/.exec(values.block ?? '1x1');
  if (!block || +block[1] < 1 || +block[2] < 1) throw new UsageError('--block must look like 1x4', generateUsage);
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
    sparsityBlock: { outputs: +block[1], inputs: +block[2] },
  });
  console.log(`wrote ${dir}`);
}
