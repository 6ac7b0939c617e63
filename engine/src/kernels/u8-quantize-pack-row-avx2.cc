// Per-token u8 quantization straight into the tile with AVX2, 8 values (2 quads) per step.
#include "kernels-internal.h"

#if SBS_KERNELS_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace sbs::kernels {

void u8_quantize_pack_row_avx2(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale, int32_t* zero) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  // Masked-off lanes load 0, which cannot move lo = min(0, ...) or hi = max(0, ...).
  __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
  for (int k = 0; k < K; k += 8) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), iota);
    const __m256 v = _mm256_maskload_ps(x + k, mask);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  float lo8[8], hi8[8];
  _mm256_storeu_ps(lo8, vlo);
  _mm256_storeu_ps(hi8, vhi);
  float lo = lo8[0], hi = hi8[0];
  for (int i = 1; i < 8; ++i) {
    lo = std::min(lo, lo8[i]);
    hi = std::max(hi, hi8[i]);
  }
  const QuantParams qp = quant_params(lo, hi);
  const __m256 inv = _mm256_set1_ps(qp.inv_scale);
  const __m256i zp = _mm256_set1_epi32(qp.zero);
  const __m256i lo_q = _mm256_setzero_si256(), hi_q = _mm256_set1_epi32(255);
  // Low byte of each dword to the first 4 bytes of its 128-bit lane.
  const __m256i gather = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const int Kq = (K + 3) / 4;
  const size_t row = size_t(Mt) * 4;
  uint8_t* dst = tile + size_t(m) * 4;
  for (int k = 0; k < K; k += 8) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), iota);
    const __m256 v = _mm256_maskload_ps(x + k, mask);
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, inv)), zp);
    q = _mm256_and_si256(_mm256_min_epi32(_mm256_max_epi32(q, lo_q), hi_q), mask);  // k >= K -> 0
    q = _mm256_shuffle_epi8(q, gather);
    const int kq = k / 4;
    uint8_t* d = dst + size_t(kq) * row;
    _mm_storeu_si32(d, _mm256_castsi256_si128(q));
    if (Kq - kq > 1) _mm_storeu_si32(d + row, _mm256_extracti128_si256(q, 1));
  }
  *scale = qp.scale;
  *zero = qp.zero;
}

void u8_quantize_pack_group_avx2(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                 float* scale, int32_t* zero) {
  quantize_pack_group_by_rows<u8_quantize_pack_row_avx2>(x, ldx, count, K, tile, Mt, m0, scale, zero);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
