// Sparse tile GEMM, 16-channel group x Mt tokens, AVX2 without VNNI: the CSR walk of the AVX-VNNI kernel with
// the exact int16-widening product of the AVX2 dense kernel (see there why not VPMADDUBSW).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"
#include "transpose-avx2.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace sbs::kernels {

namespace {

template <int TB>
inline void sparse_channel(const uint8_t* tile, size_t row, const uint16_t* kq, const int32_t* q, uint32_t e,
                           uint32_t end, int32_t* park, bool first) {
  const __m256i low_bytes = _mm256_set1_epi16(0x00ff);
  __m256i acc[TB];
#pragma GCC unroll 4
  for (int t = 0; t < TB; ++t) acc[t] = _mm256_setzero_si256();
  for (; e < end; ++e) {
    const uint8_t* a = tile + kq[e] * row;
    const __m256i wb = _mm256_set1_epi32(q[e]);
    const __m256i w_even = _mm256_srai_epi16(_mm256_slli_epi16(wb, 8), 8);
    const __m256i w_odd = _mm256_srai_epi16(wb, 8);
#pragma GCC unroll 4
    for (int t = 0; t < TB; ++t) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t * 32));
      acc[t] = _mm256_add_epi32(acc[t], _mm256_add_epi32(_mm256_madd_epi16(_mm256_and_si256(v, low_bytes), w_even),
                                                         _mm256_madd_epi16(_mm256_srli_epi16(v, 8), w_odd)));
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < TB; ++t) {
    __m256i* dst = reinterpret_cast<__m256i*>(park + t * 128);
    const __m256i s = first ? acc[t] : _mm256_add_epi32(acc[t], _mm256_loadu_si256(dst));
    _mm256_storeu_si256(dst, s);
  }
}

template <int TB>
inline void sparse_chunk(const uint8_t* tile, size_t row, int t0, const SparseWeightsView& w, const uint32_t* begin,
                         const uint32_t* end, int nc, int32_t* acc, bool first) {
  for (int c = 0; c < nc; ++c)
    sparse_channel<TB>(tile + t0 * 4, row, w.kq, w.quads, begin[c], end[c], acc + (t0 / 8) * 128 + c * 8, first);
}

}  // namespace

void qu8s8_spmm_avx2(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
  const size_t row = size_t(Mt) * 4;
  const int kb = quads_per_block(Mt, kSparseTileBlockBytes);
  uint32_t begin[kChannelGroup], end[kChannelGroup];
  for (int c = 0; c < nc; ++c) begin[c] = w.row_begin[n0 + c];
  for (int k0 = 0; k0 < w.Kq; k0 += kb) {
    const uint32_t k1 = uint32_t(k0 + kb);
    for (int c = 0; c < nc; ++c) {
      // A linear scan: a channel has few entries per block, and a binary search mispredicts at every step.
      const uint32_t row_end = w.row_begin[n0 + c + 1];
      uint32_t e = begin[c];
      while (e < row_end && w.kq[e] < k1) ++e;
      end[c] = e;
    }
    int t0 = 0;
    for (; t0 + 32 <= Mt; t0 += 32) sparse_chunk<4>(tile, row, t0, w, begin, end, nc, acc, k0 == 0);
    if (t0 < Mt) sparse_chunk<2>(tile, row, t0, w, begin, end, nc, acc, k0 == 0);
    for (int c = 0; c < nc; ++c) begin[c] = end[c];
  }
  for (int c = nc; c < 16; ++c)
    for (int t = 0; t < Mt / 8; ++t) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + t * 128 + c * 8), _mm256_setzero_si256());
  transpose_acc_blocks_avx2(acc, Mt / 8);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
