import { readInitializers, readModelFile } from '../../src/runtime/onnx-initializers.js';

/** The int8 weight matrices of an ONNX file, dense, whether stored as initializers or sparse_initializers. */
export function int8Initializers(path: string): Map<string, { dims: number[]; values: Int8Array; sparse: boolean }> {
  const result = new Map<string, { dims: number[]; values: Int8Array; sparse: boolean }>();
  for (const [name, { dims, values, sparse }] of readInitializers(readModelFile(path)))
    if (values instanceof Int8Array) result.set(name, { dims, values, sparse });
  return result;
}
