import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Family, Task } from '../checkpoint/model-config.js';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { bertTokenizerConfig, bertTokenizerJson } from '../checkpoint/tokenizer-files.js';
import { writeTorchBin } from '../checkpoint/torch-bin.js';
import { BlockSplitError, blockNotation, describeBlock, type PruningBlock } from '../sparsity/block.js';
import { magnitudePrune } from '../sparsity/prune.js';
import { syntheticVocabulary } from './synthetic-vocab.js';

export interface Dimensions {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
}

export const dimensionPresets: Record<string, Dimensions> = {
  tiny: { hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxPositions: 512 },
  small: { hiddenSize: 128, numLayers: 2, numHeads: 2, intermediateSize: 512, maxPositions: 512 },
  base: { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512 },
  large: { hiddenSize: 1024, numLayers: 24, numHeads: 16, intermediateSize: 4096, maxPositions: 512 },
};

export const defaultLabels: Record<Exclude<Task, 'question-answering'>, string[]> = {
  'text-classification': ['NEGATIVE', 'POSITIVE'],
  'token-classification': ['O', 'B-MISC', 'I-MISC', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC'],
};

export interface GenerateOptions {
  outDir: string;
  family: Family;
  task: Task;
  dims: Dimensions;
  format: 'safetensors' | 'pytorch';
  seed: number;
  labels?: string[];
  /** A folder holding a real tokenizer.json (or vocab.txt); otherwise a small synthetic WordPiece vocabulary. */
  tokenizerDir?: string;
  /**
   * Zero this fraction of each encoder Linear by magnitude (blocks scored by average |w|, the nearest whole number of
   * blocks), as a Prune OFA checkpoint would arrive.
   */
  sparsity?: number;
  /**
   * The pruning block by axis (default 1 x 1, unstructured). `{ outputs: 4, inputs: 1 }` is recipe block_dims [1, 4],
   * Intel's "1x4 block": 4 consecutive output channels at one input; `{ outputs: 1, inputs: 4 }` is 4 consecutive
   * inputs of one output channel.
   */
  sparsityBlock?: PruningBlock;
}

/** Deterministic normal samples (mulberry32 + Box-Muller) so a seed always yields the same checkpoint. */
export class SeededRandom {
  private state: number;
  private spare: number | undefined;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  uniform(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    const u = 1 - this.uniform();
    const v = this.uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }
}

function loadVocabulary(tokenizerDir: string | undefined): {
  vocab: string[];
  lowercase: boolean;
  tokenizerJson?: string;
} {
  if (!tokenizerDir) return { vocab: syntheticVocabulary(), lowercase: true };
  const jsonPath = join(tokenizerDir, 'tokenizer.json');
  if (existsSync(jsonPath)) {
    const text = readFileSync(jsonPath, 'utf8');
    const parsed = JSON.parse(text) as {
      model: { vocab: Record<string, number> };
      normalizer?: { lowercase?: boolean };
    };
    const vocab: string[] = [];
    for (const [token, id] of Object.entries(parsed.model.vocab)) vocab[id] = token;
    return { vocab, lowercase: parsed.normalizer?.lowercase ?? true, tokenizerJson: text };
  }
  const vocab = readFileSync(join(tokenizerDir, 'vocab.txt'), 'utf8')
    .split('\n')
    .filter((line, i, all) => line || i < all.length - 1);
  return { vocab, lowercase: true };
}

function hfConfig(options: GenerateOptions, vocabSize: number, labels: string[]): Record<string, unknown> {
  const { family, task, dims } = options;
  const prefix = family === 'bert' ? 'Bert' : 'DistilBert';
  const suffix = {
    'question-answering': 'ForQuestionAnswering',
    'text-classification': 'ForSequenceClassification',
    'token-classification': 'ForTokenClassification',
  }[task];
  const labelMaps =
    task === 'question-answering'
      ? {}
      : {
          id2label: Object.fromEntries(labels.map((label, i) => [String(i), label])),
          label2id: Object.fromEntries(labels.map((label, i) => [label, i])),
        };
  const common = {
    architectures: [`${prefix}${suffix}`],
    vocab_size: vocabSize,
    max_position_embeddings: dims.maxPositions,
    initializer_range: 0.02,
    pad_token_id: 0,
    ...labelMaps,
  };
  if (family === 'bert') {
    return {
      ...common,
      model_type: 'bert',
      hidden_size: dims.hiddenSize,
      num_hidden_layers: dims.numLayers,
      num_attention_heads: dims.numHeads,
      intermediate_size: dims.intermediateSize,
      hidden_act: 'gelu',
      type_vocab_size: 2,
      layer_norm_eps: 1e-12,
      position_embedding_type: 'absolute',
      hidden_dropout_prob: 0.1,
      attention_probs_dropout_prob: 0.1,
    };
  }
  return {
    ...common,
    model_type: 'distilbert',
    dim: dims.hiddenSize,
    n_layers: dims.numLayers,
    n_heads: dims.numHeads,
    hidden_dim: dims.intermediateSize,
    activation: 'gelu',
    dropout: 0.1,
    attention_dropout: 0.1,
    sinusoidal_pos_embds: false,
  };
}

function buildTensors(
  options: GenerateOptions,
  vocabSize: number,
  numLabels: number,
): Map<string, { shape: number[]; data: Float32Array }> {
  const random = new SeededRandom(options.seed);
  const { family, task, dims } = options;
  const h = dims.hiddenSize;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const normal = (name: string, shape: number[], mean = 0, std = 0.02) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * random.normal();
    tensors.set(name, { shape, data });
    return data;
  };
  const linear = (module: string, inFeatures: number, outFeatures: number, prunable: boolean) => {
    const weight = normal(`${module}.weight`, [outFeatures, inFeatures]);
    normal(`${module}.bias`, [outFeatures]);
    if (prunable && options.sparsity) {
      try {
        magnitudePrune(weight, outFeatures, inFeatures, options.sparsity, {
          block: options.sparsityBlock,
          count: 'nearest',
        });
      } catch (error) {
        if (!(error instanceof BlockSplitError)) throw error;
        throw new Error(
          `sparsityBlock ${blockNotation(error.block)} (${describeBlock(error.block)}) does not fit ${module}.weight: ${error.message}`,
        );
      }
    }
  };
  const layerNorm = (module: string) => {
    normal(`${module}.weight`, [h], 1, 0.02);
    normal(`${module}.bias`, [h]);
  };
  const p = family === 'bert' ? 'bert' : 'distilbert';
  normal(`${p}.embeddings.word_embeddings.weight`, [vocabSize, h]);
  normal(`${p}.embeddings.position_embeddings.weight`, [dims.maxPositions, h]);
  if (family === 'bert') normal(`${p}.embeddings.token_type_embeddings.weight`, [2, h]);
  layerNorm(`${p}.embeddings.LayerNorm`);
  for (let i = 0; i < dims.numLayers; i++) {
    if (family === 'bert') {
      const l = `bert.encoder.layer.${i}`;
      for (const name of ['query', 'key', 'value']) linear(`${l}.attention.self.${name}`, h, h, true);
      linear(`${l}.attention.output.dense`, h, h, true);
      layerNorm(`${l}.attention.output.LayerNorm`);
      linear(`${l}.intermediate.dense`, h, dims.intermediateSize, true);
      linear(`${l}.output.dense`, dims.intermediateSize, h, true);
      layerNorm(`${l}.output.LayerNorm`);
    } else {
      const l = `distilbert.transformer.layer.${i}`;
      for (const name of ['q_lin', 'k_lin', 'v_lin', 'out_lin']) linear(`${l}.attention.${name}`, h, h, true);
      layerNorm(`${l}.sa_layer_norm`);
      linear(`${l}.ffn.lin1`, h, dims.intermediateSize, true);
      linear(`${l}.ffn.lin2`, dims.intermediateSize, h, true);
      layerNorm(`${l}.output_layer_norm`);
    }
  }
  if (task === 'question-answering') linear('qa_outputs', h, 2, false);
  else if (task === 'token-classification') linear('classifier', h, numLabels, false);
  else {
    linear(family === 'bert' ? 'bert.pooler.dense' : 'pre_classifier', h, h, false);
    linear('classifier', h, numLabels, false);
  }
  return tensors;
}

/** Writes a seeded random-init checkpoint in Hugging Face layout; returns the folder. Written atomically. */
export function generateCheckpoint(options: GenerateOptions): string {
  const outDir = resolve(options.outDir);
  const { vocab, lowercase, tokenizerJson } = loadVocabulary(options.tokenizerDir);
  const labels = options.task === 'question-answering' ? [] : (options.labels ?? defaultLabels[options.task]);
  const staging = join(dirname(outDir), `.${Date.now()}-${process.pid}.generating`);
  mkdirSync(staging, { recursive: true });
  try {
    const tensors = buildTensors(options, vocab.length, labels.length);
    if (options.format === 'safetensors') writeSafetensors(join(staging, 'model.safetensors'), tensors);
    else writeTorchBin(join(staging, 'pytorch_model.bin'), tensors);
    const write = (name: string, value: object) =>
      writeFileSync(join(staging, name), JSON.stringify(value, null, 2) + '\n');
    write('config.json', hfConfig(options, vocab.length, labels));
    writeFileSync(
      join(staging, 'tokenizer.json'),
      tokenizerJson ?? JSON.stringify(bertTokenizerJson(vocab, lowercase)),
    );
    if (options.tokenizerDir && existsSync(join(options.tokenizerDir, 'tokenizer_config.json'))) {
      copyFileSync(join(options.tokenizerDir, 'tokenizer_config.json'), join(staging, 'tokenizer_config.json'));
    } else {
      write('tokenizer_config.json', bertTokenizerConfig(lowercase, options.dims.maxPositions));
    }
    writeFileSync(join(staging, 'vocab.txt'), vocab.join('\n') + '\n');
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(staging, outDir);
    return outDir;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}
