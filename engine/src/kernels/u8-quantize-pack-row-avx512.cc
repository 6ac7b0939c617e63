// Per-token u8 quantization straight into the tile, 16 values (4 quads) per step; the 4 quads go to tile rows
// kq..kq+3, Mt*4 bytes apart, as 4 dword stores (cheaper than a scatter on AMD cores).
#include "kernels-internal.h"

#if SBS_KERNELS_X86
#include <immintrin.h>

#pragma GCC push_options
// GCC 12 flags the intentionally undefined pass-through operand inside its own AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl")

namespace sbs::kernels {

namespace {

// The row's quantization parameters (quant_params of min(0, min x) and max(0, max x)).
inline QuantParams row_params(const float* x, int K) {
  // Masked-off lanes load 0, which cannot move lo = min(0, ...) or hi = max(0, ...).
  __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
  for (int k = 0; k < K; k += 16) {
    const __mmask16 mask = K - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (K - k)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(mask, x + k);
    vlo = _mm512_min_ps(vlo, v);
    vhi = _mm512_max_ps(vhi, v);
  }
  return quant_params(_mm512_reduce_min_ps(vlo), _mm512_reduce_max_ps(vhi));
}

}  // namespace

void u8_quantize_pack_row_avx512(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale, int32_t* zero) {
  const QuantParams qp = row_params(x, K);
  const __m512 inv = _mm512_set1_ps(qp.inv_scale);
  const __m512i zp = _mm512_set1_epi32(qp.zero);
  const __m512i lo_q = _mm512_setzero_si512(), hi_q = _mm512_set1_epi32(255);
  const int Kq = (K + 3) / 4;
  const size_t row = size_t(Mt) * 4;
  uint8_t* dst = tile + size_t(m) * 4;
  for (int k = 0; k < K; k += 16) {
    const __mmask16 mask = K - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (K - k)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(mask, x + k);
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv)), zp);
    q = _mm512_maskz_mov_epi32(mask, _mm512_min_epi32(_mm512_max_epi32(q, lo_q), hi_q));  // k >= K -> 0
    const __m128i bytes = _mm512_cvtepi32_epi8(q);
    const int kq = k / 4, quads = std::min(4, Kq - kq);
    uint8_t* d = dst + size_t(kq) * row;
    _mm_storeu_si32(d, bytes);
    if (quads > 1) _mm_storeu_si32(d + row, _mm_bsrli_si128(bytes, 4));
    if (quads > 2) _mm_storeu_si32(d + 2 * row, _mm_bsrli_si128(bytes, 8));
    if (quads > 3) _mm_storeu_si32(d + 3 * row, _mm_bsrli_si128(bytes, 12));
  }
  *scale = qp.scale;
  *zero = qp.zero;
}

// 16 rows at a time: each row's 16 values of 4 quads become 16 bytes; the 16 rows' bytes are transposed as dwords
// (row 4L + g in lane L of vector g, then in-lane unpacks) into one 64-byte line per quad: 4 full-line stores per
// 16 x 16 values instead of 64 dword stores, which on K = 3072 tiles missed L1 on almost every store.
void u8_quantize_pack_group_avx512(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                   float* scale, int32_t* zero) {
  __m512 inv[16];
  __m512i zp[16];
  for (int r = 0; r < count; ++r) {
    const QuantParams qp = row_params(x + size_t(r) * ldx, K);
    inv[r] = _mm512_set1_ps(qp.inv_scale);
    zp[r] = _mm512_set1_epi32(qp.zero);
    scale[r] = qp.scale;
    zero[r] = qp.zero;
  }
  const __m512i lo_q = _mm512_setzero_si512(), hi_q = _mm512_set1_epi32(255);
  const int Kq = (K + 3) / 4;
  for (int k = 0; k < K; k += 16) {
    const __mmask16 mask = K - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (K - k)) - 1);
    __m128i bytes[16];
    for (int r = 0; r < 16; ++r) {
      if (r >= count) {
        bytes[r] = _mm_setzero_si128();
        continue;
      }
      const __m512 v = _mm512_maskz_loadu_ps(mask, x + size_t(r) * ldx + k);
      __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv[r])), zp[r]);
      q = _mm512_maskz_mov_epi32(mask, _mm512_min_epi32(_mm512_max_epi32(q, lo_q), hi_q));  // k >= K -> 0
      bytes[r] = _mm512_cvtepi32_epi8(q);
    }
    __m512i z[4];
    for (int g = 0; g < 4; ++g) {
      z[g] = _mm512_castsi128_si512(bytes[g]);
      z[g] = _mm512_inserti32x4(z[g], bytes[4 + g], 1);
      z[g] = _mm512_inserti32x4(z[g], bytes[8 + g], 2);
      z[g] = _mm512_inserti32x4(z[g], bytes[12 + g], 3);
    }
    const __m512i a = _mm512_unpacklo_epi32(z[0], z[1]), b = _mm512_unpackhi_epi32(z[0], z[1]);
    const __m512i c = _mm512_unpacklo_epi32(z[2], z[3]), d = _mm512_unpackhi_epi32(z[2], z[3]);
    const __m512i quad[4] = {_mm512_unpacklo_epi64(a, c), _mm512_unpackhi_epi64(a, c), _mm512_unpacklo_epi64(b, d),
                             _mm512_unpackhi_epi64(b, d)};
    const int kq0 = k / 4;
    for (int j = 0; j < 4 && kq0 + j < Kq; ++j)
      _mm512_storeu_si512(tile + (size_t(kq0 + j) * Mt + m0) * 4, quad[j]);
  }
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
