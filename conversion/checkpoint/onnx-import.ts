import type onnxProto from 'onnx-proto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { ConversionError } from '../errors.js';
import { decodeModel, onnx, type ModelProto, type TensorProto } from '../graph/onnx-builder.js';
import { transpose } from '../quantize/int8.js';
import { bytesPerElement, decodeFloatTensor, elementCount, type FloatTensor, type WeightMap } from './tensor.js';

const DataType = onnx.TensorProto.DataType;
const floatTypes = new Map<number, string>([
  [DataType.FLOAT, 'float32'],
  [DataType.FLOAT16, 'float16'],
  [DataType.BFLOAT16, 'bfloat16'],
  [DataType.DOUBLE, 'float64'],
]);

/** Names torch.onnx keeps for parameters it stores as they are: `bert.embeddings.LayerNorm.weight`, `classifier.bias`. */
const parameterName = /^[^/:]+\.(weight|bias|gamma|beta)$/;
/** The op name torch.onnx appends to a node's module scope: `/bert/pooler/dense/Gemm`, `/classifier/MatMul_1`. */
const opSuffix = /^(MatMul|Gemm)(_\d+)?$/;

type NodeProto = onnxProto.onnx.INodeProto;

/** Where a MatMul/Gemm weight comes from, and whether the graph transposes it on the way (Transpose node). */
interface Source {
  name: string;
  tensor: TensorProto;
  transposedByGraph: boolean;
}

/** `/bert/encoder/layer.0/attention/self/query/MatMul` → `bert.encoder.layer.0.attention.self.query`; none for `MatMul_12`. */
export function moduleOfNode(nodeName: string | null | undefined): string | undefined {
  if (!nodeName || !nodeName.includes('/')) return undefined;
  const parts = nodeName.split('/').filter(Boolean);
  if (parts.length > 0 && opSuffix.test(parts[parts.length - 1])) parts.pop();
  return parts.length > 0 ? parts.join('.') : undefined;
}

function attributeOf(node: NodeProto, name: string): onnxProto.onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = attributeOf(node, name);
  return attribute?.i == null ? fallback : Number(attribute.i);
}

/** Reads tensor payloads, from the model itself or from external-data side files (opened once each). */
class TensorReader {
  private readonly files = new Map<string, { fd: number; size: number }>();
  private readonly modelDir: string;

  constructor(private readonly modelPath: string) {
    this.modelDir = dirname(resolve(modelPath));
  }

  close(): void {
    for (const { fd } of this.files.values()) closeSync(fd);
    this.files.clear();
  }

  read(name: string, tensor: TensorProto): FloatTensor {
    const dtype = floatTypes.get(tensor.dataType ?? 0);
    if (!dtype) throw new ConversionError(this.modelPath, `tensor "${name}" is not a float tensor`);
    const shape = (tensor.dims ?? []).map(Number);
    const count = elementCount(shape);
    if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      return {
        shape,
        data: decodeFloatTensor(this.external(name, tensor, count * bytesPerElement[dtype]), dtype, count),
        sourceDtype: dtype,
      };
    }
    const raw = tensor.rawData;
    if (raw && raw.length > 0) {
      const expected = count * bytesPerElement[dtype];
      if (raw.length !== expected) {
        throw new ConversionError(
          this.modelPath,
          `not a readable ONNX model: tensor "${name}" holds ${raw.length} bytes but its shape [${shape}] needs ${expected}`,
        );
      }
      return { shape, data: decodeFloatTensor(raw, dtype, count), sourceDtype: dtype };
    }
    // Typed fields: float_data for fp32, int32_data holding the 16-bit patterns for fp16/bf16, double_data for fp64.
    const values: ArrayLike<number> =
      dtype === 'float32'
        ? (tensor.floatData ?? [])
        : dtype === 'float64'
          ? (tensor.doubleData ?? [])
          : (tensor.int32Data ?? []);
    if (values.length !== count) {
      throw new ConversionError(
        this.modelPath,
        `not a readable ONNX model: tensor "${name}" holds ${values.length} values but its shape [${shape}] needs ${count}`,
      );
    }
    if (dtype === 'float32' || dtype === 'float64')
      return { shape, data: Float32Array.from(values), sourceDtype: dtype };
    const bits = Uint16Array.from(values);
    return { shape, data: decodeFloatTensor(new Uint8Array(bits.buffer), dtype, count), sourceDtype: dtype };
  }

  private external(name: string, tensor: TensorProto, byteLength: number): Uint8Array {
    const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location)
      throw new ConversionError(this.modelPath, `tensor "${name}" is stored externally but names no location`);
    const file = resolve(this.modelDir, location);
    const inside = relative(this.modelDir, file);
    if (isAbsolute(location) || inside.startsWith('..') || isAbsolute(inside)) {
      throw new ConversionError(this.modelPath, `tensor "${name}" points outside the model's folder ("${location}")`);
    }
    let handle = this.files.get(file);
    if (!handle) {
      if (!existsSync(file)) {
        throw new ConversionError(
          file,
          `external data file not found (tensor "${name}" of ${this.modelPath} is stored there)`,
        );
      }
      const fd = openSync(file, 'r');
      handle = { fd, size: fstatSync(fd).size };
      this.files.set(file, handle);
    }
    const offset = Number(entries.get('offset') ?? 0);
    const length = entries.has('length') ? Number(entries.get('length')) : byteLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || length !== byteLength) {
      throw new ConversionError(
        file,
        `tensor "${name}" has an invalid external-data offset/length (${offset}/${length}, needs ${byteLength} bytes)`,
      );
    }
    if (offset + length > handle.size) {
      throw new ConversionError(
        file,
        `truncated: tensor "${name}" needs bytes ${offset}..${offset + length} but the file holds ${handle.size}`,
      );
    }
    const bytes = new Uint8Array(length);
    for (let done = 0; done < length;) {
      const n = readSync(handle.fd, bytes, done, length - done, offset + done);
      if (n === 0) throw new ConversionError(file, `truncated while reading tensor "${name}"`);
      done += n;
    }
    return bytes;
  }
}

function decode(path: string): ModelProto {
  if (!existsSync(path)) throw new ConversionError(path, 'file not found');
  let model: ModelProto;
  try {
    model = decodeModel(readFileSync(path));
  } catch (error) {
    throw new ConversionError(path, `not a readable ONNX model: ${(error as Error).message}`);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) {
    throw new ConversionError(path, 'not a readable ONNX model: it holds no graph');
  }
  return model;
}

/**
 * Reads the weights of an fp32 (or fp16, widened) ONNX export of a Hugging Face BERT/DistilBERT model, as
 * `optimum-cli export onnx` / `torch.onnx.export` write it, under the checkpoint's parameter names in torch layout.
 *
 * Parameters torch.onnx stores as they are (embeddings, LayerNorm, biases, Gemm transB=1 weights) keep their names.
 * Linear weights feeding a MatMul were constant-folded to [in, out] under an opaque name (`onnx::MatMul_1234`): they
 * are named after the consuming node's module scope (`/bert/encoder/layer.0/attention/self/query/MatMul` →
 * `bert.encoder.layer.0.attention.self.query.weight`) and transposed back to [out, in].
 */
export function readOnnxExportWeights(path: string): WeightMap {
  const graph = decode(path).graph!;
  const nodes = graph.node ?? [];

  const tensors = new Map<string, TensorProto>();
  for (const tensor of graph.initializer ?? []) {
    if (tensor.name && floatTypes.has(tensor.dataType ?? 0)) tensors.set(tensor.name, tensor);
  }
  const producers = new Map<string, NodeProto>();
  for (const node of nodes) {
    for (const output of node.output ?? []) producers.set(output, node);
    if (node.opType === 'Constant' && node.output?.[0]) {
      const value = attributeOf(node, 'value')?.t;
      if (value && floatTypes.has(value.dataType ?? 0)) tensors.set(node.output[0], value);
    }
  }

  /** Follows Identity (tied/deduplicated weights) and 2-D Transpose nodes back to a stored tensor. */
  const sourceOf = (name: string, transposedByGraph = false, depth = 0): Source | undefined => {
    const tensor = tensors.get(name);
    if (tensor) return { name, tensor, transposedByGraph };
    const producer = producers.get(name);
    if (!producer || depth > 8 || !producer.input?.[0]) return undefined;
    if (producer.opType === 'Identity') return sourceOf(producer.input[0], transposedByGraph, depth + 1);
    if (producer.opType === 'Transpose') {
      const perm = attributeOf(producer, 'perm')?.ints?.map(Number);
      if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) return undefined;
      return sourceOf(producer.input[0], !transposedByGraph, depth + 1);
    }
    return undefined;
  };

  const reader = new TensorReader(path);
  try {
    const weights: WeightMap = new Map();
    const mappedFrom = new Map<string, string>();
    /** Tensors stored [in, out] for a MatMul: their own name, if HF-like, must not pass through untransposed. */
    const storedTransposed = new Set<string>();
    const unnamed: string[] = [];

    for (const node of nodes) {
      if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') continue;
      if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
      const source = node.input?.[1] ? sourceOf(node.input[1]) : undefined;
      if (!source || (source.tensor.dims ?? []).length !== 2) continue;
      // Torch layout is [out, in]; MatMul consumes [in, out], Gemm with transB=1 consumes [out, in].
      const transB = node.opType === 'Gemm' && intAttribute(node, 'transB', 0) === 1;
      const storedAsTorch = transB !== source.transposedByGraph;
      if (!storedAsTorch) storedTransposed.add(source.name);

      const module = moduleOfNode(node.name);
      const name = module ? `${module}.weight` : parameterName.test(source.name) ? source.name : undefined;
      if (!name) {
        unnamed.push(`node "${node.name || node.output?.[0] || node.opType}" reading "${source.name}"`);
        continue;
      }
      const previous = mappedFrom.get(name);
      if (previous !== undefined) {
        if (previous === source.name) continue;
        throw new ConversionError(path, `weights "${previous}" and "${source.name}" both map to "${name}"`);
      }
      mappedFrom.set(name, source.name);
      const tensor = reader.read(source.name, source.tensor);
      const [rows, cols] = tensor.shape;
      weights.set(
        name,
        storedAsTorch
          ? tensor
          : { shape: [cols, rows], data: transpose(tensor.data, rows, cols), sourceDtype: tensor.sourceDtype },
      );
    }
    if (unnamed.length > 0) {
      throw new ConversionError(
        path,
        `cannot map MatMul weights to modules: node names carry no module path (e.g. ${unnamed[0]}${unnamed.length > 1 ? ` and ${unnamed.length - 1} more` : ''}); re-export with torch >= 1.13 / optimum`,
      );
    }

    for (const [name, tensor] of tensors) {
      if (!parameterName.test(name) || storedTransposed.has(name) || weights.has(name)) continue;
      weights.set(name, reader.read(name, tensor));
    }
    return weights;
  } finally {
    reader.close();
  }
}
