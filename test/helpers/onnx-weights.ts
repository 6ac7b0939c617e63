import { readFileSync } from 'node:fs';
import { decodeModel, onnx } from '../../conversion/graph/onnx-builder.js';

/** The int8 weight matrices of an ONNX file, dense, whether stored as initializers or sparse_initializers. */
export function int8Initializers(path: string): Map<string, { dims: number[]; values: Int8Array; sparse: boolean }> {
  const graph = decodeModel(readFileSync(path)).graph!;
  const result = new Map<string, { dims: number[]; values: Int8Array; sparse: boolean }>();
  const int8 = onnx.TensorProto.DataType.INT8;
  const view = (bytes: Uint8Array) => new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const tensor of graph.initializer ?? []) {
    if (tensor.dataType === int8)
      result.set(tensor.name!, { dims: tensor.dims!.map(Number), values: view(tensor.rawData!), sparse: false });
  }
  for (const sparse of graph.sparseInitializer ?? []) {
    const dims = sparse.dims!.map(Number);
    const dense = new Int8Array(dims.reduce((a, b) => a * b, 1));
    const values = view(sparse.values!.rawData!);
    const indexBytes = sparse.indices!.rawData!;
    const indices = new Int32Array(
      indexBytes.buffer.slice(indexBytes.byteOffset, indexBytes.byteOffset + indexBytes.byteLength),
    );
    indices.forEach((index, k) => (dense[index] = values[k]));
    result.set(sparse.values!.name!, { dims, values: dense, sparse: true });
  }
  return result;
}
