import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encoderLinears, type ModelWeights } from './checkpoint/layout.js';
import type { ModelSpec, Task } from './checkpoint/model-config.js';
import type { GraphSignature } from './graph/bert-graph.js';
import { blockDimsOf, blockNotation, describeBlock } from './sparsity/block.js';
import type { PruningRecipe, QuantizationRecipe } from './sparsity/recipe.js';
import type { SparsityReport } from './sparsity/measure.js';
import type { VerificationReport } from './verify/verify.js';

export const manifestFormat = 'sparse-bert-serve/manifest@1';
export const denseModelFile = 'model.onnx';
export const int8ModelFile = 'model.int8.onnx';

export interface ArtifactFile {
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof manifestFormat;
  converterVersion: string;
  createdAt: string;
  name: string;
  source: {
    kind: 'directory' | 'hub';
    location: string;
    revision?: string;
    weightFormat: string;
    weightFiles: string[];
  };
  task: Task;
  architecture: string;
  family: ModelSpec['family'];
  labels: string[];
  maxSequenceLength: number;
  lowercase: boolean;
  signature: GraphSignature;
  dimensions: Pick<
    ModelSpec,
    'hiddenSize' | 'numLayers' | 'numHeads' | 'intermediateSize' | 'vocabSize' | 'maxPositions'
  >;
  parameters: { total: number; embeddings: number; encoder: number; encoderLinearWeights: number; head: number };
  sparsity: {
    checkpoint: SparsityReport;
    final: SparsityReport;
    pruning: null | {
      recipe: Record<string, unknown>;
      pruningFn: string;
      targetSparsity: number;
      /** The recipe's block_dims in the package's [in, out] order ([1, 4]: 4 output channels at one input). */
      blockDims: number[];
      /** The same block by axis, in plain words. */
      block: {
        /** Consecutive output channels (rows of the torch weight [out, in]) per block. */
        outputs: number;
        /** Consecutive input positions (columns of the torch weight [out, in]) per block. */
        inputs: number;
        /** e.g. "1x4 (recipe block_dims [in, out])". */
        notation: string;
        /** e.g. "4 consecutive output channels at one input". */
        description: string;
      };
      prunedModules: number;
      warning: string;
    };
  };
  quantization: {
    scheme: 'dynamic-int8';
    weights: string;
    activations: string;
    wordEmbeddings: string;
    quantizedModules: number;
    fp32Modules: string[];
    recipe: { notToQuantize: string[]; notToRequantizeOutput: string[]; source: Record<string, unknown> };
  };
  compression: {
    encoderDenseFp32Bytes: number;
    encoderNonZeroWeights: number;
    /** The paper's count: dense fp32 encoder weight bytes / (non-zero weights x 1 byte). */
    encoderCompressionRatio: number;
    /** What the int8 file really spends on encoder weights: packed values + indices (or dense int8) + scales. */
    encoderStoredBytes: number;
    encoderStoredCompressionRatio: number;
  };
  artifacts: Record<string, { precision: 'fp32' | 'int8'; sparseStorage: boolean }>;
  verification: VerificationReport;
  /** sha256 of every other file in the folder. */
  files: Record<string, ArtifactFile>;
}

/** The dimensions a manifest records (and the engine's weight reader needs) from a model spec. */
export function manifestDimensions(spec: ModelSpec): Manifest['dimensions'] {
  const { hiddenSize, numLayers, numHeads, intermediateSize, vocabSize, maxPositions } = spec;
  return { hiddenSize, numLayers, numHeads, intermediateSize, vocabSize, maxPositions };
}

export function countParameters(model: ModelWeights): Manifest['parameters'] {
  const size = (t?: { data: Float32Array }) => t?.data.length ?? 0;
  const embeddings =
    size(model.wordEmbeddings) +
    size(model.positionEmbeddings) +
    size(model.tokenTypeEmbeddings) +
    size(model.embeddingNorm.gamma) +
    size(model.embeddingNorm.beta);
  const linears = encoderLinears(model);
  const encoderLinearWeights = linears.reduce((sum, l) => sum + size(l.weight), 0);
  const encoder =
    linears.reduce((sum, l) => sum + size(l.weight) + size(l.bias), 0) +
    model.layers.reduce((sum, l) => sum + size(l.attentionNorm.gamma) * 2 + size(l.outputNorm.gamma) * 2, 0);
  const head = model.head;
  const headLinears =
    head.kind === 'question-answering'
      ? [head.qaOutputs]
      : head.kind === 'token-classification'
        ? [head.classifier]
        : [head.pooler, head.classifier];
  const headCount = headLinears.reduce((sum, l) => sum + size(l.weight) + size(l.bias), 0);
  return { total: embeddings + encoder + headCount, embeddings, encoder, encoderLinearWeights, head: headCount };
}

/** Encoder compression as the Prune OFA paper counts it (weights of the encoder's Linear layers). */
export function encoderCompression(model: ModelWeights): Manifest['compression'] {
  let denseBytes = 0;
  let nonZero = 0;
  let storedBytes = 0;
  for (const linear of encoderLinears(model)) {
    const data = linear.weight.data;
    let nz = 0;
    for (let i = 0; i < data.length; i++) if (data[i] !== 0) nz++;
    denseBytes += data.length * 4;
    nonZero += nz;
    // Mirrors the packing rule: sparse (1 B value + 4 B index) only when smaller than dense int8; plus fp32 scales.
    storedBytes += Math.min(data.length, nz * 5) + linear.weight.shape[0] * 4;
  }
  return {
    encoderDenseFp32Bytes: denseBytes,
    encoderNonZeroWeights: nonZero,
    encoderCompressionRatio: denseBytes / Math.max(1, nonZero),
    encoderStoredBytes: storedBytes,
    encoderStoredCompressionRatio: denseBytes / storedBytes,
  };
}

export function hashFiles(dir: string, except: string[]): Record<string, ArtifactFile> {
  const files: Record<string, ArtifactFile> = {};
  for (const name of readdirSync(dir).sort()) {
    if (except.includes(name)) continue;
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const bytes = readFileSync(path);
    files[name] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  return files;
}

export function describePruning(recipe: PruningRecipe, prunedModules: number): Manifest['sparsity']['pruning'] {
  return {
    recipe: recipe.source,
    pruningFn: recipe.pruningFn,
    targetSparsity: recipe.targetSparsity,
    blockDims: blockDimsOf(recipe.block),
    block: {
      outputs: recipe.block.outputs,
      inputs: recipe.block.inputs,
      notation: `${blockNotation(recipe.block)} (recipe block_dims [in, out])`,
      description: describeBlock(recipe.block),
    },
    prunedModules,
    warning:
      'one-shot pruning without retraining: accuracy drops; Prune OFA prunes during pre-training with distillation and fine-tunes with the pattern locked',
  };
}

export function describeQuantization(
  recipe: QuantizationRecipe,
  quantizedModules: number,
  fp32Modules: string[],
  quantizeWordEmbeddings: boolean,
): Manifest['quantization'] {
  return {
    scheme: 'dynamic-int8',
    weights: 'int8, symmetric, per output channel, zero point 0 (pruned weights stay exactly zero)',
    activations: 'uint8, asymmetric, per tensor, computed at run time (DynamicQuantizeLinear)',
    wordEmbeddings: quantizeWordEmbeddings ? 'int8, symmetric, per row' : 'fp32',
    quantizedModules,
    fp32Modules,
    recipe: {
      notToQuantize: recipe.notToQuantize,
      notToRequantizeOutput: recipe.notToRequantizeOutput,
      source: recipe.source,
    },
  };
}
