import { ConversionError } from '../errors.js';
import type { ModelSpec } from './model-config.js';
import type { FloatTensor, WeightMap } from './tensor.js';

/** A torch Linear: weight is [out, in] as stored in the checkpoint. `module` is its checkpoint path. */
export interface Linear {
  module: string;
  weight: FloatTensor;
  bias: FloatTensor;
}

export interface LayerNorm {
  gamma: FloatTensor;
  beta: FloatTensor;
}

export interface EncoderLayer {
  query: Linear;
  key: Linear;
  value: Linear;
  attentionOutput: Linear;
  attentionNorm: LayerNorm;
  intermediate: Linear;
  output: Linear;
  outputNorm: LayerNorm;
}

export type Head =
  | { kind: 'question-answering'; qaOutputs: Linear }
  /** BERT pools with dense+tanh on [CLS]; DistilBERT uses pre_classifier+ReLU on [CLS]. */
  | { kind: 'text-classification'; pooler: Linear; poolerActivation: 'tanh' | 'relu'; classifier: Linear }
  | { kind: 'token-classification'; classifier: Linear };

export interface ModelWeights {
  wordEmbeddings: FloatTensor;
  positionEmbeddings: FloatTensor;
  tokenTypeEmbeddings?: FloatTensor;
  embeddingNorm: LayerNorm;
  layers: EncoderLayer[];
  head: Head;
}

/** Every Linear of the model in a stable order, encoder first; pruning and quantization walk this list. */
export function allLinears(model: ModelWeights): Linear[] {
  const linears: Linear[] = [];
  for (const layer of model.layers) {
    linears.push(layer.query, layer.key, layer.value, layer.attentionOutput, layer.intermediate, layer.output);
  }
  const head = model.head;
  if (head.kind === 'question-answering') linears.push(head.qaOutputs);
  else if (head.kind === 'text-classification') linears.push(head.pooler, head.classifier);
  else linears.push(head.classifier);
  return linears;
}

export function encoderLinears(model: ModelWeights): Linear[] {
  return model.layers.flatMap((l) => [l.query, l.key, l.value, l.attentionOutput, l.intermediate, l.output]);
}

class WeightReader {
  readonly used = new Set<string>();
  constructor(
    private readonly weights: WeightMap,
    private readonly file: string,
  ) {}

  tensor(names: string[], shape: number[]): FloatTensor {
    for (const name of names) {
      const tensor = this.weights.get(name);
      if (!tensor) continue;
      if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
        throw new ConversionError(
          this.file,
          `weight "${name}" has shape [${tensor.shape}] but config.json implies [${shape}]`,
        );
      }
      this.used.add(name);
      return tensor;
    }
    throw new ConversionError(this.file, `missing weight "${names[0]}" (shape [${shape}])`);
  }

  linear(module: string, inFeatures: number, outFeatures: number): Linear {
    return {
      module,
      weight: this.tensor([`${module}.weight`], [outFeatures, inFeatures]),
      bias: this.tensor([`${module}.bias`], [outFeatures]),
    };
  }

  layerNorm(module: string, size: number): LayerNorm {
    return {
      gamma: this.tensor([`${module}.weight`, `${module}.gamma`], [size]),
      beta: this.tensor([`${module}.bias`, `${module}.beta`], [size]),
    };
  }
}

/** Some checkpoints (older exports, base models) have no "bert."/"distilbert." prefix. */
function detectPrefix(weights: WeightMap, family: ModelSpec['family']): string {
  const prefix = `${family}.`;
  for (const name of weights.keys()) if (name.startsWith(prefix)) return prefix;
  return '';
}

/** Maps the checkpoint's flat tensor names to the model structure, checking every shape against config.json. */
export function resolveLayout(spec: ModelSpec, weights: WeightMap, file: string): ModelWeights {
  const read = new WeightReader(weights, file);
  const h = spec.hiddenSize;
  const p = detectPrefix(weights, spec.family);
  const isBert = spec.family === 'bert';
  const emb = `${p}embeddings`;
  const model: Omit<ModelWeights, 'head'> = {
    wordEmbeddings: read.tensor([`${emb}.word_embeddings.weight`], [spec.vocabSize, h]),
    positionEmbeddings: read.tensor([`${emb}.position_embeddings.weight`], [spec.maxPositions, h]),
    tokenTypeEmbeddings: isBert
      ? read.tensor([`${emb}.token_type_embeddings.weight`], [spec.typeVocabSize, h])
      : undefined,
    embeddingNorm: read.layerNorm(`${emb}.LayerNorm`, h),
    layers: [],
  };
  for (let i = 0; i < spec.numLayers; i++) {
    if (isBert) {
      const l = `${p}encoder.layer.${i}`;
      model.layers.push({
        query: read.linear(`${l}.attention.self.query`, h, h),
        key: read.linear(`${l}.attention.self.key`, h, h),
        value: read.linear(`${l}.attention.self.value`, h, h),
        attentionOutput: read.linear(`${l}.attention.output.dense`, h, h),
        attentionNorm: read.layerNorm(`${l}.attention.output.LayerNorm`, h),
        intermediate: read.linear(`${l}.intermediate.dense`, h, spec.intermediateSize),
        output: read.linear(`${l}.output.dense`, spec.intermediateSize, h),
        outputNorm: read.layerNorm(`${l}.output.LayerNorm`, h),
      });
    } else {
      const l = `${p}transformer.layer.${i}`;
      model.layers.push({
        query: read.linear(`${l}.attention.q_lin`, h, h),
        key: read.linear(`${l}.attention.k_lin`, h, h),
        value: read.linear(`${l}.attention.v_lin`, h, h),
        attentionOutput: read.linear(`${l}.attention.out_lin`, h, h),
        attentionNorm: read.layerNorm(`${l}.sa_layer_norm`, h),
        intermediate: read.linear(`${l}.ffn.lin1`, h, spec.intermediateSize),
        output: read.linear(`${l}.ffn.lin2`, spec.intermediateSize, h),
        outputNorm: read.layerNorm(`${l}.output_layer_norm`, h),
      });
    }
  }
  let head: Head;
  if (spec.task === 'question-answering') {
    head = { kind: 'question-answering', qaOutputs: read.linear('qa_outputs', h, 2) };
  } else if (spec.task === 'token-classification') {
    head = { kind: 'token-classification', classifier: read.linear('classifier', h, spec.numLabels) };
  } else {
    head = {
      kind: 'text-classification',
      pooler: isBert ? read.linear(`${p}pooler.dense`, h, h) : read.linear('pre_classifier', h, h),
      poolerActivation: isBert ? 'tanh' : 'relu',
      classifier: read.linear('classifier', h, spec.numLabels),
    };
  }
  return { ...model, head };
}
