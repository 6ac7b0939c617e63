/**
 * Turns the converter's int8 ONNX artifact into the engine's named tensors: the same per-channel symmetric int8
 * weights onnxruntime runs, with Q, K and V fused into one [hidden, 3 x hidden] matrix. The graph is walked in node
 * order, which the converter fixes (embeddings, then per layer Q, K, V, attention output, intermediate, output,
 * then the head), so nothing depends on checkpoint module names.
 */
import type { Manifest } from '../../conversion/manifest.js';
import type { ModelProto } from '../../conversion/graph/onnx-builder.js';
import { readInitializers, type Initializer } from './onnx-initializers.js';

export interface EngineSpec {
  task: Manifest['task'];
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  typeVocab: number;
  labels: number;
  layerNormEps: number;
  activation: 'gelu' | 'relu';
  poolerActivation: 'tanh' | 'relu';
}

export type EngineTensors = Record<string, Float32Array | Int8Array>;

/** The artifact cannot run on the engine (the reason is shown, and the model is served by onnxruntime instead). */
export class EngineUnsupportedError extends Error {}

interface GraphLinear {
  module: string;
  /** [in, out] as in the ONNX MatMul. */
  weight: Initializer;
  /** Per output channel; absent for fp32 linears. */
  scale?: Initializer;
  bias: Initializer;
}

function need(initializers: Map<string, Initializer>, name: string): Initializer {
  const found = initializers.get(name);
  if (!found) throw new EngineUnsupportedError(`the int8 model has no initializer ${name}`);
  return found;
}

function graphLinears(model: ModelProto, initializers: Map<string, Initializer>): GraphLinear[] {
  const linears: GraphLinear[] = [];
  for (const node of model.graph!.node ?? []) {
    const module = node.name?.split('/')[0] ?? '';
    if (node.opType === 'MatMulInteger') {
      linears.push({
        module,
        weight: need(initializers, node.input![1]),
        scale: need(initializers, `${module}.weight_scale`),
        bias: need(initializers, `${module}.bias`),
      });
    } else if (node.opType === 'MatMul' && initializers.has(node.input![1])) {
      linears.push({ module, weight: need(initializers, node.input![1]), bias: need(initializers, `${module}.bias`) });
    }
  }
  return linears;
}

/** A head linear in fp32 [in, out]: dequantized when the artifact quantized it. */
function floatWeight(linear: GraphLinear): Float32Array {
  const values = linear.weight.values;
  if (values instanceof Float32Array) return values;
  const [inFeatures, outFeatures] = linear.weight.dims;
  const scales = linear.scale!.values as Float32Array;
  const out = new Float32Array(values.length);
  for (let k = 0; k < inFeatures; k++)
    for (let n = 0; n < outFeatures; n++) out[k * outFeatures + n] = values[k * outFeatures + n] * scales[n];
  return out;
}

function concatColumns(parts: (Int8Array | Float32Array)[], rows: number, widths: number[]): Int8Array {
  const total = widths.reduce((a, b) => a + b, 0);
  const out = new Int8Array(rows * total);
  let offset = 0;
  parts.forEach((part, p) => {
    const width = widths[p];
    for (let r = 0; r < rows; r++) out.set(part.subarray(r * width, (r + 1) * width) as Int8Array, r * total + offset);
    offset += width;
  });
  return out;
}

function concatFloats(parts: Initializer[]): Float32Array {
  const out = new Float32Array(parts.reduce((sum, p) => sum + p.values.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part.values as Float32Array, offset);
    offset += part.values.length;
  }
  return out;
}

export function engineWeights(
  manifest: Pick<Manifest, 'task' | 'dimensions'>,
  model: ModelProto,
): { spec: EngineSpec; tensors: EngineTensors } {
  const initializers = readInitializers(model);
  const nodes = model.graph!.node ?? [];
  const dims = manifest.dimensions;
  const tensors: EngineTensors = {};

  const norms = nodes.filter((node) => node.opType === 'LayerNormalization');
  if (norms.length !== 1 + 2 * dims.numLayers)
    throw new EngineUnsupportedError(
      `expected ${1 + 2 * dims.numLayers} LayerNormalization nodes, found ${norms.length}`,
    );
  const epsilon = norms[0].attribute?.find((a) => a.name === 'epsilon')?.f ?? 1e-12;
  const setNorm = (name: string, index: number) => {
    tensors[`${name}.gamma`] = need(initializers, norms[index].input![1]).values;
    tensors[`${name}.beta`] = need(initializers, norms[index].input![2]).values;
  };

  const quantizedWord = initializers.get('embeddings.word_embeddings.weight_quantized');
  if (quantizedWord) {
    tensors['embeddings.word'] = quantizedWord.values;
    tensors['embeddings.word_scale'] = need(initializers, 'embeddings.word_embeddings.weight_scale').values;
  } else {
    tensors['embeddings.word'] = need(initializers, 'embeddings.word_embeddings.weight').values;
  }
  tensors['embeddings.position'] = need(initializers, 'embeddings.position_embeddings.weight').values;
  const tokenTypes = initializers.get('embeddings.token_type_embeddings.weight');
  if (tokenTypes) tensors['embeddings.token_type'] = tokenTypes.values;
  setNorm('embeddings.norm', 0);

  const linears = graphLinears(model, initializers);
  const perLayer = 6;
  const H = dims.hiddenSize;
  for (let l = 0; l < dims.numLayers; l++) {
    const [query, key, value, attentionOutput, intermediate, output] = linears.slice(l * perLayer, (l + 1) * perLayer);
    const encoder = [query, key, value, attentionOutput, intermediate, output];
    const fp32 = encoder.find((linear) => !linear || !(linear.weight.values instanceof Int8Array));
    if (fp32)
      throw new EngineUnsupportedError(`encoder linear ${fp32?.module ?? `of layer ${l}`} is not int8 in the artifact`);
    const p = `layers.${l}.`;
    tensors[`${p}qkv.weight`] = concatColumns([query.weight.values, key.weight.values, value.weight.values], H, [
      H,
      H,
      H,
    ]);
    tensors[`${p}qkv.scale`] = concatFloats([query.scale!, key.scale!, value.scale!]);
    tensors[`${p}qkv.bias`] = concatFloats([query.bias, key.bias, value.bias]);
    for (const [name, linear] of [
      ['attention_output', attentionOutput],
      ['intermediate', intermediate],
      ['output', output],
    ] as const) {
      tensors[`${p}${name}.weight`] = linear.weight.values;
      tensors[`${p}${name}.scale`] = linear.scale!.values;
      tensors[`${p}${name}.bias`] = linear.bias.values;
    }
    setNorm(`${p}attention_norm`, 1 + 2 * l);
    setNorm(`${p}output_norm`, 2 + 2 * l);
  }

  const head = linears.slice(dims.numLayers * perLayer);
  const classification = manifest.task === 'text-classification';
  if (head.length !== (classification ? 2 : 1))
    throw new EngineUnsupportedError(`unexpected head: ${head.map((linear) => linear.module).join(', ')}`);
  if (classification) {
    tensors['head.pooler.weight'] = floatWeight(head[0]);
    tensors['head.pooler.bias'] = head[0].bias.values;
  }
  const output = head[head.length - 1];
  tensors['head.output.weight'] = floatWeight(output);
  tensors['head.output.bias'] = output.bias.values;

  const opTypes = new Set(nodes.map((node) => node.opType));
  const spec: EngineSpec = {
    task: manifest.task,
    hidden: H,
    layers: dims.numLayers,
    heads: dims.numHeads,
    intermediate: dims.intermediateSize,
    vocab: dims.vocabSize,
    maxPositions: dims.maxPositions,
    typeVocab: tokenTypes ? tokenTypes.dims[0] : 0,
    labels: manifest.task === 'question-answering' ? 2 : output.weight.dims[1],
    layerNormEps: epsilon,
    activation: opTypes.has('Erf') ? 'gelu' : 'relu',
    poolerActivation: nodes.some((node) => node.opType === 'Relu' && node.output?.[0] === 'pool/activation')
      ? 'relu'
      : 'tanh',
  };
  return { spec, tensors };
}
