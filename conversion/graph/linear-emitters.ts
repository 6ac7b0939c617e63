import type { Linear } from '../checkpoint/layout.js';
import { matchesAny } from '../sparsity/recipe.js';
import { quantizeLinearWeightTransposed, quantizeRows, transpose } from '../quantize/int8.js';
import type { GraphBuilder } from './onnx-builder.js';

/**
 * How a torch Linear / embedding becomes ONNX nodes. The seam for other schemes: a static-int8 emitter using
 * QAT or calibration scales would implement the same interface.
 */
export interface LinearEmitter {
  linear(graph: GraphBuilder, input: string, linear: Linear): string;
  wordEmbedding(graph: GraphBuilder, inputIds: string, table: Float32Array, rows: number, dim: number): string;
}

function fp32Linear(graph: GraphBuilder, input: string, linear: Linear): string {
  const [outFeatures, inFeatures] = linear.weight.shape;
  const weight = graph.initializer(
    `${linear.module}.weight`,
    [inFeatures, outFeatures],
    transpose(linear.weight.data, outFeatures, inFeatures),
  );
  const bias = graph.initializer(`${linear.module}.bias`, [outFeatures], linear.bias.data);
  const product = graph.one('MatMul', [input, weight], `${linear.module}/MatMul`);
  return graph.one('Add', [product, bias], `${linear.module}/Add`);
}

function fp32Embedding(graph: GraphBuilder, inputIds: string, table: Float32Array, rows: number, dim: number): string {
  const weight = graph.initializer('embeddings.word_embeddings.weight', [rows, dim], table);
  return graph.one('Gather', [weight, inputIds], 'embeddings/word');
}

export const fp32Emitter: LinearEmitter = { linear: fp32Linear, wordEmbedding: fp32Embedding };

/**
 * The pattern onnxruntime's quantize_dynamic emits (DynamicQuantizeLinear + MatMulInteger + rescale), which ORT
 * fuses at load into DynamicQuantizeMatMul / MatMulIntegerToFloat. Weight zero point is omitted (it is 0).
 * One DynamicQuantizeLinear is shared by every Linear reading the same activation (Q, K and V).
 */
export class DynamicInt8Emitter implements LinearEmitter {
  private readonly quantizedInputs = new Map<string, [string, string, string]>();
  readonly quantizedModules: string[] = [];
  readonly fp32Modules: string[] = [];

  constructor(
    private readonly notToQuantize: readonly string[],
    private readonly quantizeWordEmbeddings: boolean,
  ) {}

  linear(graph: GraphBuilder, input: string, linear: Linear): string {
    if (matchesAny(linear.module, this.notToQuantize)) {
      this.fp32Modules.push(linear.module);
      return fp32Linear(graph, input, linear);
    }
    this.quantizedModules.push(linear.module);
    const [outFeatures, inFeatures] = linear.weight.shape;
    const { values, scales } = quantizeLinearWeightTransposed(linear.weight.data, outFeatures, inFeatures);
    const weight = graph.initializer(`${linear.module}.weight_quantized`, [inFeatures, outFeatures], values);
    const weightScale = graph.initializer(`${linear.module}.weight_scale`, [outFeatures], scales);
    const bias = graph.initializer(`${linear.module}.bias`, [outFeatures], linear.bias.data);
    let quantized = this.quantizedInputs.get(input);
    if (!quantized) {
      quantized = graph.node('DynamicQuantizeLinear', [input], `${linear.module}/input_quantized`, {}, 3) as [
        string,
        string,
        string,
      ];
      this.quantizedInputs.set(input, quantized);
    }
    const [inputQuantized, inputScale, inputZeroPoint] = quantized;
    const integerProduct = graph.one(
      'MatMulInteger',
      [inputQuantized, weight, inputZeroPoint],
      `${linear.module}/MatMulInteger`,
    );
    const asFloat = graph.one('Cast', [integerProduct], `${linear.module}/Cast`, { to: 1 });
    const scale = graph.one('Mul', [inputScale, weightScale], `${linear.module}/scale`);
    const rescaled = graph.one('Mul', [asFloat, scale], `${linear.module}/rescaled`);
    return graph.one('Add', [rescaled, bias], `${linear.module}/Add`);
  }

  /** Gathers int8 rows and their scales, so only the looked-up rows are dequantized at run time. */
  wordEmbedding(graph: GraphBuilder, inputIds: string, table: Float32Array, rows: number, dim: number): string {
    if (!this.quantizeWordEmbeddings) return fp32Embedding(graph, inputIds, table, rows, dim);
    const { values, scales } = quantizeRows(table, rows, dim);
    const weight = graph.initializer('embeddings.word_embeddings.weight_quantized', [rows, dim], values);
    const rowScales = graph.initializer('embeddings.word_embeddings.weight_scale', [rows, 1], scales);
    const gathered = graph.one('Gather', [weight, inputIds], 'embeddings/word_quantized');
    const asFloat = graph.one('Cast', [gathered], 'embeddings/word_cast', { to: 1 });
    const gatheredScales = graph.one('Gather', [rowScales, inputIds], 'embeddings/word_scales');
    return graph.one('Mul', [asFloat, gatheredScales], 'embeddings/word');
  }
}
