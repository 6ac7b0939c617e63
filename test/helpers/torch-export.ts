/**
 * Simulated torch.onnx.export / optimum output for the ONNX-import tests: rewrites the project's own fp32 graph into
 * the naming and storage layouts real exports use, and writes it (optionally with external data) to disk.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type onnxProto from 'onnx-proto';
import type { ModelSpec } from '../../conversion/checkpoint/model-config.js';
import { decodeFloatTensor } from '../../conversion/checkpoint/tensor.js';
import { encodeModel, onnx, type ModelProto, type TensorProto } from '../../conversion/graph/onnx-builder.js';
import { transpose } from '../../conversion/quantize/int8.js';

const DataType = onnx.TensorProto.DataType;
const AttributeType = onnx.AttributeProto.AttributeType;

export interface ExportOptions {
  /** 'legacy' names MatMul nodes like torch < 1.13 did (`MatMul_123`), with no module scope. */
  nodeNames?: 'scoped' | 'legacy';
  /** 'parameter' keeps the [in, out] MatMul weights under their `<module>.weight` names instead of `onnx::MatMul_<n>`. */
  matmulWeightNames?: 'opaque' | 'parameter';
  /** Linear modules (on 2-D inputs) exported as one Gemm, as torch does for the pooler/classifier. */
  gemm?: Record<string, { transB: 0 | 1; keepName: boolean }>;
  /** Every weight tensor held in a Constant node's `value` attribute instead of an initializer. */
  weightsInConstantNodes?: boolean;
  /** Biases in the typed fields (float_data / int32_data) instead of raw_data. */
  biasesInTypedFields?: boolean;
  /** Float tensors stored as fp16. */
  fp16?: boolean;
}

function floatsOf(tensor: TensorProto): Float32Array {
  const count = (tensor.dims ?? []).map(Number).reduce((a, b) => a * b, 1);
  return decodeFloatTensor(tensor.rawData!, 'float32', count);
}

export function bytesOf(data: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Truncating fp32 → fp16 bit pattern; the test compares against the same bits widened, so rounding is immaterial. */
export function toHalfBits(value: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return sign;
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | ((bits & 0x7fffff) >>> 13);
}

/** `bert.encoder.layer.0.attention.self.query` → `/bert/encoder/layer.0/attention/self/query`, torch's scope naming. */
function torchScope(module: string): string {
  const parts: string[] = [];
  for (const part of module.split('.')) {
    if (/^\d+$/.test(part) && parts.length > 0) parts[parts.length - 1] += `.${part}`;
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** The Hugging Face parameter name of one of the graph builder's non-Linear initializers. */
function hfName(name: string, spec: ModelSpec): string {
  if (name.startsWith('embeddings.')) return `${spec.family}.${name}`;
  const norm = /^layer\.(\d+)\.(attention_norm|output_norm)\.(weight|bias)$/.exec(name);
  if (!norm) return name;
  const [, i, which, kind] = norm;
  if (spec.family === 'bert') {
    return `bert.encoder.layer.${i}.${which === 'attention_norm' ? 'attention.output' : 'output'}.LayerNorm.${kind}`;
  }
  return `distilbert.transformer.layer.${i}.${which === 'attention_norm' ? 'sa_layer_norm' : 'output_layer_norm'}.${kind}`;
}

/**
 * Rewrites the project's fp32 graph into what torch.onnx.export / optimum write: parameters under their HF names,
 * Linear weights constant-folded to [in, out] as `onnx::MatMul_<n>` read by `/module/path/MatMul` nodes, scalar
 * constants as Constant nodes.
 */
export function toTorchExport(model: ModelProto, spec: ModelSpec, options: ExportOptions = {}): ModelProto {
  const graph = model.graph!;
  const nodes = graph.node!;
  const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const renames = new Map<string, string>();
  const dropped = new Set<onnxProto.onnx.INodeProto>();
  let counter = 1201;

  for (const node of nodes) {
    if (node.opType !== 'MatMul' || !initializers.has(node.input![1])) continue;
    const weightName = node.input![1];
    const weight = initializers.get(weightName)!;
    const module = weightName.slice(0, -'.weight'.length);
    const gemm = options.gemm?.[module];
    if (!gemm) {
      if (options.matmulWeightNames !== 'parameter') renames.set(weightName, `onnx::MatMul_${counter++}`);
      node.name = options.nodeNames === 'legacy' ? `MatMul_${counter++}` : `${torchScope(module)}/MatMul`;
      continue;
    }
    const add = nodes.find((n) => n.opType === 'Add' && n.input![0] === node.output![0])!;
    dropped.add(add);
    node.opType = 'Gemm';
    node.name = `${torchScope(module)}/Gemm`;
    node.input = [node.input![0], weightName, add.input![1]];
    node.output = add.output;
    node.attribute = [
      { name: 'alpha', type: AttributeType.FLOAT, f: 1 },
      { name: 'beta', type: AttributeType.FLOAT, f: 1 },
      { name: 'transB', type: AttributeType.INT, i: gemm.transB },
    ];
    if (gemm.transB === 1) {
      const [inFeatures, outFeatures] = weight.dims!.map(Number);
      weight.rawData = bytesOf(transpose(floatsOf(weight), inFeatures, outFeatures));
      weight.dims = [outFeatures, inFeatures];
    }
    if (!gemm.keepName) renames.set(weightName, `onnx::Gemm_${counter++}`);
  }
  graph.node = nodes.filter((n) => !dropped.has(n));

  const constantNodes: onnxProto.onnx.INodeProto[] = [];
  const toConstant = (tensor: TensorProto, output: string) =>
    constantNodes.push({
      opType: 'Constant',
      name: `/Constant_${constantNodes.length}`,
      output: [output],
      attribute: [{ name: 'value', type: AttributeType.TENSOR, t: { ...tensor, name: '' } }],
    });
  const kept: TensorProto[] = [];
  for (const tensor of graph.initializer!) {
    const name = tensor.name!;
    if (name.startsWith('const_')) {
      const output = `/Constant_${constantNodes.length}_output_0`;
      renames.set(name, output);
      toConstant(tensor, output);
      continue;
    }
    tensor.name = renames.get(name) ?? hfName(name, spec);
    if (tensor.name !== name) renames.set(name, tensor.name);
    if (options.biasesInTypedFields && tensor.name.endsWith('.bias')) {
      tensor.floatData = Array.from(floatsOf(tensor));
      delete tensor.rawData;
    }
    if (options.fp16) {
      tensor.dataType = DataType.FLOAT16;
      const bits = Uint16Array.from(tensor.floatData?.length ? tensor.floatData : floatsOf(tensor), toHalfBits);
      if (tensor.floatData?.length) {
        tensor.int32Data = Array.from(bits);
        tensor.floatData = [];
      } else tensor.rawData = bytesOf(bits);
    }
    if (options.weightsInConstantNodes) toConstant(tensor, tensor.name);
    else kept.push(tensor);
  }
  graph.initializer = kept;
  graph.node = [...constantNodes, ...graph.node];
  for (const node of graph.node) node.input = (node.input ?? []).map((input) => renames.get(input) ?? input);
  return model;
}

/** Writes model.onnx; with `external`, tensors of 1 KiB or more go to that side file as onnx's save_model does. */
export function writeExport(dir: string, model: ModelProto, external?: string): string {
  mkdirSync(dir, { recursive: true });
  if (external) {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const tensor of model.graph!.initializer!) {
      const raw = tensor.rawData!;
      if (raw.length < 1024) continue;
      const padding = (4096 - (offset % 4096)) % 4096;
      chunks.push(new Uint8Array(padding), raw);
      offset += padding;
      tensor.externalData = [
        { key: 'location', value: external },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ];
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      delete tensor.rawData;
      offset += raw.length;
    }
    writeFileSync(join(dir, external), Buffer.concat(chunks));
  }
  const path = join(dir, 'model.onnx');
  writeFileSync(path, encodeModel(model));
  return path;
}
