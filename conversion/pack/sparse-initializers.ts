import { onnx, type ModelProto, type TensorProto } from '../graph/onnx-builder.js';

export interface PackReport {
  packedTensors: number;
  denseBytes: number;
  packedBytes: number;
}

const int8Type = onnx.TensorProto.DataType.INT8;

/**
 * Moves int8 initializers that are mostly zeros into ONNX `sparse_initializer`s (values + int32 linear indices),
 * when that is smaller than the dense bytes (below ~20% density). Standard ONNX: any onnxruntime loads it and
 * densifies at load, so this buys file size, not speed (measured, DESIGN.md).
 */
export function packSparseInitializers(model: ModelProto): PackReport {
  const graph = model.graph!;
  const kept: TensorProto[] = [];
  const sparse = [...(graph.sparseInitializer ?? [])];
  const report: PackReport = { packedTensors: 0, denseBytes: 0, packedBytes: 0 };
  for (const tensor of graph.initializer ?? []) {
    if (tensor.dataType !== int8Type || !tensor.rawData) {
      kept.push(tensor);
      continue;
    }
    const raw = tensor.rawData;
    const values = new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    let nonZero = 0;
    for (let i = 0; i < values.length; i++) if (values[i] !== 0) nonZero++;
    const packedBytes = nonZero * 5;
    if (packedBytes >= values.length) {
      kept.push(tensor);
      continue;
    }
    const nonZeroValues = new Int8Array(nonZero);
    const indices = new Int32Array(nonZero);
    for (let i = 0, k = 0; i < values.length; i++) {
      if (values[i] !== 0) {
        nonZeroValues[k] = values[i];
        indices[k++] = i;
      }
    }
    sparse.push({
      dims: tensor.dims,
      values: { name: tensor.name, dims: [nonZero], dataType: int8Type, rawData: new Uint8Array(nonZeroValues.buffer) },
      indices: {
        name: `${tensor.name}_indices`,
        dims: [nonZero],
        dataType: onnx.TensorProto.DataType.INT32,
        rawData: new Uint8Array(indices.buffer),
      },
    });
    report.packedTensors++;
    report.denseBytes += values.length;
    report.packedBytes += packedBytes;
  }
  graph.initializer = kept;
  graph.sparseInitializer = sparse;
  return report;
}
