/**
 * Symmetric int8 with zero point 0: round(0 / scale) is 0, so every pruned weight stays exactly zero and the
 * sparsity pattern survives quantization. Range [-127, 127] keeps the grid symmetric; VNNI (VPDPBUSD) multiplies
 * u8 activations by s8 weights without the 16-bit saturation that forces reduce_range on older AVX2 paths.
 */
export interface QuantizedMatrix {
  /** Row-major [rows, cols]. */
  values: Int8Array;
  /** One scale per column (per output channel of the MatMul). */
  scales: Float32Array;
}

const qmax = 127;

/** Half away from zero, so w and -w quantize to opposite values (Math.round alone is biased upward at ties). */
function quantize(value: number, scale: number): number {
  const scaled = Math.round(Math.abs(value) / scale);
  return Math.sign(value) * Math.min(qmax, scaled);
}

/**
 * Quantizes a torch Linear weight [out, in] into the MatMul layout [in, out] with one scale per output channel.
 */
export function quantizeLinearWeightTransposed(
  weight: Float32Array,
  outFeatures: number,
  inFeatures: number,
): QuantizedMatrix {
  const scales = new Float32Array(outFeatures);
  const values = new Int8Array(inFeatures * outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    let max = 0;
    const row = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) max = Math.max(max, Math.abs(weight[row + i]));
    const scale = max > 0 ? max / qmax : 1;
    scales[o] = scale;
    for (let i = 0; i < inFeatures; i++) {
      values[i * outFeatures + o] = quantize(weight[row + i], scale);
    }
  }
  return { values, scales };
}

/** Quantizes an embedding table [rows, dim] with one scale per row (per token), keeping the layout. */
export function quantizeRows(table: Float32Array, rows: number, dim: number): QuantizedMatrix {
  const scales = new Float32Array(rows);
  const values = new Int8Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < dim; c++) max = Math.max(max, Math.abs(table[r * dim + c]));
    const scale = max > 0 ? max / qmax : 1;
    scales[r] = scale;
    for (let c = 0; c < dim; c++) values[r * dim + c] = quantize(table[r * dim + c], scale);
  }
  return { values, scales };
}

export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
