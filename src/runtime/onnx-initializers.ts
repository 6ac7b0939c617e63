import { readFileSync } from 'node:fs';
import { decodeModel, onnx, type ModelProto, type TensorProto } from '../../conversion/graph/onnx-builder.js';

export type InitializerValues = Float32Array | Int8Array;
export interface Initializer {
  dims: number[];
  values: InitializerValues;
  /** Stored as a sparse_initializer in the file. */
  sparse: boolean;
}

const DataType = onnx.TensorProto.DataType;

/** rawData is a view into the file at any byte offset; typed arrays need their own aligned copy. */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function readValues(tensor: TensorProto): InitializerValues | undefined {
  if (tensor.dataType === DataType.INT8) return new Int8Array(ownBuffer(tensor.rawData ?? new Uint8Array()));
  if (tensor.dataType !== DataType.FLOAT) return undefined;
  if (tensor.rawData?.byteLength) return new Float32Array(ownBuffer(tensor.rawData));
  return Float32Array.from(tensor.floatData ?? []);
}

/**
 * Every float32 and int8 initializer of an ONNX model by name, dense: sparse_initializers (values + int32 linear
 * indices, as the converter packs mostly-zero int8 weights) are expanded back to their full shape.
 */
export function readInitializers(model: ModelProto): Map<string, Initializer> {
  const graph = model.graph!;
  const result = new Map<string, Initializer>();
  for (const tensor of graph.initializer ?? []) {
    const values = readValues(tensor);
    if (values) result.set(tensor.name!, { dims: tensor.dims!.map(Number), values, sparse: false });
  }
  for (const sparse of graph.sparseInitializer ?? []) {
    const values = readValues(sparse.values!);
    if (!values) continue;
    const dims = sparse.dims!.map(Number);
    const length = dims.reduce((a, b) => a * b, 1);
    const positions = new Int32Array(ownBuffer(sparse.indices!.rawData ?? new Uint8Array()));
    if (positions.length !== values.length)
      throw new Error(
        `sparse initializer ${sparse.values!.name}: ${positions.length} indices for ${values.length} values`,
      );
    const dense = values instanceof Int8Array ? new Int8Array(length) : new Float32Array(length);
    for (let k = 0; k < positions.length; k++) {
      const index = positions[k];
      if (index < 0 || index >= length)
        throw new Error(`sparse initializer ${sparse.values!.name}: index ${index} outside [0, ${length})`);
      dense[index] = values[k];
    }
    result.set(sparse.values!.name!, { dims, values: dense, sparse: true });
  }
  return result;
}

export function readModelFile(path: string): ModelProto {
  return decodeModel(readFileSync(path));
}
