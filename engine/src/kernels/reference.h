// Plain references and packing helpers for the kernel tester and benchmark (not used by the engine's hot path).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace sbs {

// Seeded xorshift64 random numbers for the kernel tester and benchmark.
struct TestRng {
  uint64_t s;
  explicit TestRng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  int uniform(int lo, int hi) { return lo + int(next() % uint64_t(hi - lo + 1)); }  // [lo, hi]
  double real() { return double(next() >> 11) / double(1ull << 53); }                // [0, 1)
  float normal() {
    const double u = std::max(real(), 1e-12), v = real();
    return float(std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v));
  }
  int8_t nonzero_s8() {
    int v;
    do v = int(next() % 256) - 128;
    while (v == 0);
    return int8_t(v);
  }
};

// C[m][n] = sum_k A[m][k] * W[k][n]; A is M x K u8 row-major, W is K x N s8 row-major (ONNX MatMul), C M x N.
void qu8s8_gemm_reference(const uint8_t* A, int M, int K, const int8_t* W_kn, int N, int32_t* C);

// Bytes of an activation tile of Mt tokens over K (Kq quads of Mt dwords).
size_t tile_bytes(int K, int Mt);
// Packs rows [m0, m0 + rows) of A (row-major, K columns) into `tile` (tile_bytes(K, Mt) bytes) in the layout of
// kernels.h; tokens rows..Mt-1 and bytes k >= K are zero.
void pack_tile(const uint8_t* A, int K, int m0, int rows, int Mt, uint8_t* tile);

}  // namespace sbs
