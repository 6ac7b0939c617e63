import type { EncoderLayer, LayerNorm, ModelWeights } from '../checkpoint/layout.js';
import type { ModelSpec } from '../checkpoint/model-config.js';
import { GraphBuilder, type ModelProto } from './onnx-builder.js';
import type { LinearEmitter } from './linear-emitters.js';

export interface GraphSignature {
  inputs: string[];
  outputs: string[];
}

export function graphSignature(spec: ModelSpec): GraphSignature {
  const inputs =
    spec.family === 'bert' ? ['input_ids', 'attention_mask', 'token_type_ids'] : ['input_ids', 'attention_mask'];
  const outputs = spec.task === 'question-answering' ? ['start_logits', 'end_logits'] : ['logits'];
  return { inputs, outputs };
}

/** float32's lowest value, what transformers adds to masked attention scores. */
const maskValue = -3.4028234663852886e38;

/**
 * Builds the plain export-style graph (MatMul/Add/LayerNormalization/Erf-GELU/Softmax), the form that ran fastest
 * in onnxruntime-node 1.30: ORT fuses it at load, while pre-fused contrib ops were slower (see DESIGN.md).
 * Batch and sequence axes are dynamic.
 */
export function buildBertGraph(
  spec: ModelSpec,
  model: ModelWeights,
  emitter: LinearEmitter,
  producerVersion: string,
): ModelProto {
  const g = new GraphBuilder();
  const h = spec.hiddenSize;
  const headDim = h / spec.numHeads;
  const dynamicShape = ['batch', 'sequence'];
  const inputIds = g.input('input_ids', 'int64', dynamicShape);
  const attentionMask = g.input('attention_mask', 'int64', dynamicShape);
  const tokenTypeIds = spec.family === 'bert' ? g.input('token_type_ids', 'int64', dynamicShape) : undefined;

  const layerNorm = (x: string, norm: LayerNorm, hint: string) => {
    const gamma = g.initializer(`${hint}.weight`, [h], norm.gamma.data);
    const beta = g.initializer(`${hint}.bias`, [h], norm.beta.data);
    return g.one('LayerNormalization', [x, gamma, beta], hint, { axis: -1, epsilon: { float: spec.layerNormEps } });
  };

  // Embeddings: word + position[0:S] (+ token type), then LayerNorm.
  let hidden = emitter.wordEmbedding(g, inputIds, model.wordEmbeddings.data, spec.vocabSize, h);
  const sequenceLength = g.one('Shape', [inputIds], 'embeddings/sequence_length', { start: 1, end: 2 });
  const positionTable = g.initializer(
    'embeddings.position_embeddings.weight',
    [spec.maxPositions, h],
    model.positionEmbeddings.data,
  );
  const positions = g.one(
    'Slice',
    [positionTable, g.constantInt64([0]), sequenceLength, g.constantInt64([0])],
    'embeddings/position',
  );
  hidden = g.one('Add', [hidden, positions], 'embeddings/word_position');
  if (tokenTypeIds && model.tokenTypeEmbeddings) {
    const typeTable = g.initializer(
      'embeddings.token_type_embeddings.weight',
      model.tokenTypeEmbeddings.shape,
      model.tokenTypeEmbeddings.data,
    );
    const types = g.one('Gather', [typeTable, tokenTypeIds], 'embeddings/token_type');
    hidden = g.one('Add', [hidden, types], 'embeddings/sum');
  }
  hidden = layerNorm(hidden, model.embeddingNorm, 'embeddings.LayerNorm');

  // Additive mask [B, 1, 1, S]: 0 where attended, float32 min where padded.
  const maskFloat = g.one('Cast', [attentionMask], 'mask/float', { to: 1 });
  const inverted = g.one('Sub', [g.constantFloat(1), maskFloat], 'mask/inverted');
  const additive = g.one('Mul', [inverted, g.constantFloat(maskValue)], 'mask/additive');
  const mask = g.one('Unsqueeze', [additive, g.constantInt64([1, 2])], 'mask/broadcast');

  const splitHeads = (x: string, perm: number[], hint: string) => {
    const reshaped = g.one('Reshape', [x, g.constantInt64([0, -1, spec.numHeads, headDim])], `${hint}/reshape`);
    return g.one('Transpose', [reshaped], `${hint}/transpose`, { perm });
  };
  const activation = (x: string, hint: string) => {
    if (spec.hiddenAct === 'relu') return g.one('Relu', [x], `${hint}/relu`);
    const scaled = g.one('Div', [x, g.constantFloat(Math.SQRT2)], `${hint}/div`);
    const erf = g.one('Erf', [scaled], `${hint}/erf`);
    const onePlus = g.one('Add', [erf, g.constantFloat(1)], `${hint}/add`);
    const gated = g.one('Mul', [x, onePlus], `${hint}/mul`);
    return g.one('Mul', [gated, g.constantFloat(0.5)], `${hint}/gelu`);
  };

  const encoderLayer = (x: string, layer: EncoderLayer, index: number) => {
    const hint = `layer.${index}`;
    const query = splitHeads(emitter.linear(g, x, layer.query), [0, 2, 1, 3], `${hint}/query`);
    const keyT = splitHeads(emitter.linear(g, x, layer.key), [0, 2, 3, 1], `${hint}/key`);
    const value = splitHeads(emitter.linear(g, x, layer.value), [0, 2, 1, 3], `${hint}/value`);
    const scores = g.one('MatMul', [query, keyT], `${hint}/scores`);
    const scaled = g.one('Div', [scores, g.constantFloat(Math.sqrt(headDim))], `${hint}/scores_scaled`);
    const masked = g.one('Add', [scaled, mask], `${hint}/scores_masked`);
    const probabilities = g.one('Softmax', [masked], `${hint}/probabilities`, { axis: -1 });
    const context = g.one('MatMul', [probabilities, value], `${hint}/context`);
    const merged = g.one('Transpose', [context], `${hint}/context_transpose`, { perm: [0, 2, 1, 3] });
    const contextFlat = g.one('Reshape', [merged, g.constantInt64([0, -1, h])], `${hint}/context_flat`);
    const attended = emitter.linear(g, contextFlat, layer.attentionOutput);
    const attentionResidual = g.one('Add', [attended, x], `${hint}/attention_residual`);
    const normed = layerNorm(attentionResidual, layer.attentionNorm, `${hint}.attention_norm`);
    const intermediate = activation(emitter.linear(g, normed, layer.intermediate), `${hint}/intermediate`);
    const output = emitter.linear(g, intermediate, layer.output);
    const outputResidual = g.one('Add', [output, normed], `${hint}/output_residual`);
    return layerNorm(outputResidual, layer.outputNorm, `${hint}.output_norm`);
  };
  model.layers.forEach((layer, index) => {
    hidden = encoderLayer(hidden, layer, index);
  });

  const head = model.head;
  if (head.kind === 'question-answering') {
    const logits = emitter.linear(g, hidden, head.qaOutputs);
    const [start, end] = g.node('Split', [logits, g.constantInt64([1, 1])], 'qa/split', { axis: 2 }, 2);
    g.nodeNamed('Squeeze', [start, g.constantInt64([2])], ['start_logits']);
    g.nodeNamed('Squeeze', [end, g.constantInt64([2])], ['end_logits']);
    g.output('start_logits', 'float32', dynamicShape);
    g.output('end_logits', 'float32', dynamicShape);
  } else if (head.kind === 'token-classification') {
    const logits = emitter.linear(g, hidden, head.classifier);
    g.nodeNamed('Identity', [logits], ['logits']);
    g.output('logits', 'float32', [...dynamicShape, spec.numLabels]);
  } else {
    const first = g.one('Gather', [hidden, g.constantInt64([0], [])], 'pool/first_token', { axis: 1 });
    const pooledLinear = emitter.linear(g, first, head.pooler);
    const pooled = g.one(head.poolerActivation === 'tanh' ? 'Tanh' : 'Relu', [pooledLinear], 'pool/activation');
    const logits = emitter.linear(g, pooled, head.classifier);
    g.nodeNamed('Identity', [logits], ['logits']);
    g.output('logits', 'float32', ['batch', spec.numLabels]);
  }
  return g.build(`${spec.architecture}`, 'sparse-bert-serve', producerVersion);
}
