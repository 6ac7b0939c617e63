// Private to engine/src/kernels: the per-ISA kernels behind kernels_for(), and the few helpers every ISA must
// share so that their results are bit-exact with the scalar path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define SBS_KERNELS_X86 1
#else
#define SBS_KERNELS_X86 0
#endif

namespace sbs::kernels {

// Bytes of the activation tile a dense kernel keeps hot while all channel blocks of a group pass over it: the K
// loop is cut into blocks of this many bytes (Mt tokens x 4 bytes per quad) so that the rows read again for every
// channel block stay in L1 (32-48 KiB on current x86 cores), even for K = 3072 and Mt = 128.
constexpr int kDenseTileBlockBytes = 24 * 1024;
// The sparse kernels pay per block and channel (partial sums parked and reloaded), and each channel reads only
// its non-zero quads' rows, so their blocks are larger: measured best at 48 KiB on Zen 5 (K = 768 and 3072).
constexpr int kSparseTileBlockBytes = 48 * 1024;
inline int quads_per_block(int Mt, int bytes) { return std::max(8, bytes / (Mt * 4)); }

// Emulates CVTPS2DQ in the default rounding mode (nearest-even) including its out-of-range result, so the scalar
// path agrees with the vector ones even for inputs such as inf or NaN, and never converts out of range (UB).
inline int32_t cvt_nearest_i32(float r) {
  const float n = std::nearbyint(r);
  return (n >= -2147483648.0f && n < 2147483648.0f) ? static_cast<int32_t>(n) : INT32_MIN;
}

struct QuantParams {
  float scale, inv_scale;
  int32_t zero;
};
// One definition for every ISA: the min/max reduction is exact in any order, everything after it is here.
inline QuantParams quant_params(float lo, float hi) {
  QuantParams p;
  p.scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  p.inv_scale = 1.0f / p.scale;
  p.zero = std::min(255, std::max(0, cvt_nearest_i32(-lo / p.scale)));
  return p;
}

// Adds the products of one weight quad with every token's quad at one tile row (kq) into sums[0..Mt).
inline void scalar_mac_quad(const uint8_t* row, int Mt, int32_t q, int32_t* sums) {
  uint32_t u;
  std::memcpy(&u, &q, 4);
  const int32_t w0 = int8_t(u), w1 = int8_t(u >> 8), w2 = int8_t(u >> 16), w3 = int8_t(u >> 24);
  for (int m = 0; m < Mt; ++m) {
    const uint8_t* a = row + 4 * m;
    sums[m] += a[0] * w0 + a[1] * w1 + a[2] * w2 + a[3] * w3;
  }
}

void qu8s8_gemm_dense_scalar(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_scalar(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_ob4_scalar(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc,
                           int32_t* acc);
void u8_planarize_tile_scalar(const uint8_t* tile, int Mt, int Kq, uint8_t* planar);
void qu8s8_gemm_epilogue_scalar(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy);
void u8_quantize_pack_row_scalar(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale, int32_t* zero);
void u8_quantize_pack_group_scalar(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                   float* scale, int32_t* zero);

// A group as `count` single rows plus zeroed padding tokens (the scalar and AVX2 paths).
template <QuantizePackRowFn Row>
void quantize_pack_group_by_rows(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                 float* scale, int32_t* zero) {
  for (int r = 0; r < count; ++r) Row(x + size_t(r) * ldx, K, tile, Mt, m0 + r, &scale[r], &zero[r]);
  const int Kq = (K + 3) / 4;
  if (count < 16)
    for (int kq = 0; kq < Kq; ++kq) std::memset(tile + (size_t(kq) * Mt + m0 + count) * 4, 0, size_t(16 - count) * 4);
}

#if SBS_KERNELS_X86
void qu8s8_gemm_dense_avx2(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_avx2(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_ob4_avx2(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc, int32_t* acc);
void u8_planarize_tile_avx2(const uint8_t* tile, int Mt, int Kq, uint8_t* planar);
void qu8s8_gemm_epilogue_avx2(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy);
void u8_quantize_pack_row_avx2(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale, int32_t* zero);
void u8_quantize_pack_group_avx2(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                 float* scale, int32_t* zero);

void qu8s8_gemm_dense_avxvnni(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_avxvnni(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_ob4_avxvnni(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc,
                            int32_t* acc);

void qu8s8_gemm_dense_avx512vnni(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc,
                                 int32_t* acc);
void qu8s8_spmm_avx512vnni(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc);
void qu8s8_spmm_ob4_avx512vnni(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc,
                               int32_t* acc);
void u8_planarize_tile_avx512(const uint8_t* tile, int Mt, int Kq, uint8_t* planar);
void qu8s8_gemm_epilogue_avx512(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy);
void u8_quantize_pack_row_avx512(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale, int32_t* zero);
void u8_quantize_pack_group_avx512(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                   float* scale, int32_t* zero);
#endif

}  // namespace sbs::kernels
