// Sparse tile GEMM, 16-channel group x Mt tokens, AVX-VNNI: as the AVX512-VNNI one with 8 tokens per ymm. The
// tile is walked in 32-token chunks (4 ymm) so that 2 accumulator sets (8 chains) fit the 16 registers; each
// channel's list is walked once per chunk.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"
#include "transpose-avx2.h"
#include "vnni-asm.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avxvnni,avx2")

namespace sbs::kernels {

namespace {

template <int TB, int U>
inline void sparse_channel(const uint8_t* tile, size_t row, const uint16_t* kq, const int32_t* q, uint32_t e,
                           uint32_t end, int32_t* park, bool first) {
  __m256i acc[U][TB];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
    for (int t = 0; t < TB; ++t) acc[u][t] = _mm256_setzero_si256();
  for (; e + U <= end; e += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      const uint8_t* a = tile + kq[e + u] * row;
      const __m256i wb = _mm256_set1_epi32(q[e + u]);
#pragma GCC unroll 4
      for (int t = 0; t < TB; ++t)
        acc[u][t] = dpbusd256_vex(acc[u][t], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t * 32)), wb);
    }
  }
  for (; e < end; ++e) {
    const uint8_t* a = tile + kq[e] * row;
    const __m256i wb = _mm256_set1_epi32(q[e]);
#pragma GCC unroll 4
    for (int t = 0; t < TB; ++t)
      acc[0][t] = dpbusd256_vex(acc[0][t], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t * 32)), wb);
  }
#pragma GCC unroll 4
  for (int t = 0; t < TB; ++t) {
    __m256i s = acc[0][t];
#pragma GCC unroll 4
    for (int u = 1; u < U; ++u) s = _mm256_add_epi32(s, acc[u][t]);
    __m256i* dst = reinterpret_cast<__m256i*>(park + t * 128);
    if (!first) s = _mm256_add_epi32(s, _mm256_loadu_si256(dst));
    _mm256_storeu_si256(dst, s);
  }
}

// Tokens [t0, t0 + 8*TB) of channels [0, nc) over entries [begin[c], end[c]).
template <int TB>
inline void sparse_chunk(const uint8_t* tile, size_t row, int t0, const SparseWeightsView& w, const uint32_t* begin,
                         const uint32_t* end, int nc, int32_t* acc, bool first) {
  for (int c = 0; c < nc; ++c)
    sparse_channel<TB, 2>(tile + t0 * 4, row, w.kq, w.quads, begin[c], end[c], acc + (t0 / 8) * 128 + c * 8, first);
}

}  // namespace

void qu8s8_spmm_avxvnni(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
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
