// Plain references and packing helpers for the kernel tester and benchmark (not used by the engine's hot path).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sbs {

// C[m][n] = sum_k A[m][k] * W[k][n]; A is M x K u8 row-major, W is K x N s8 row-major (ONNX MatMul), C M x N.
void qu8s8_gemm_reference(const uint8_t* A, int M, int K, const int8_t* W_kn, int N, int32_t* C);

// Bytes of an activation tile of Mt tokens over K (Kq quads of Mt dwords).
size_t tile_bytes(int K, int Mt);
// Packs rows [m0, m0 + rows) of A (row-major, K columns) into `tile` (tile_bytes(K, Mt) bytes) in the layout of
// kernels.h; tokens rows..Mt-1 and bytes k >= K are zero.
void pack_tile(const uint8_t* A, int K, int m0, int rows, int Mt, uint8_t* tile);

}  // namespace sbs
