// Private: the dense and sparse tile GEMMs for 8-token ymm vectors, shared by the AVX-VNNI and the AVX2 kernels,
// which differ only in how 4 u8 x 4 s8 products are summed into an int32 lane: a `Dot` policy (act() prepares a
// tile vector, weight() a broadcast quad, mac() accumulates). Include this after the file's `#pragma GCC target`:
// everything here is compiled for that target, in an unnamed namespace so the two ISAs' copies never merge.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"
#include "transpose-avx2.h"

namespace sbs::kernels {
namespace {
namespace ymm {

constexpr int kTb = 2;  // token vectors per dense micro-kernel (16 tokens: every Mt is a multiple)

inline __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Zeroes the channels past nc (the acc contract leaves them unspecified, but the transpose reads them) and turns the
// parked [token block][channel][8 tokens] sums into acc[m * 16 + c].
inline void finish(int32_t* acc, int Mt, int nc) {
  for (int c = nc; c < 16; ++c)
    for (int t = 0; t < Mt / 8; ++t)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + t * 128 + c * 8), _mm256_setzero_si256());
  transpose_acc_blocks_avx2(acc, Mt / 8);
}

// NC channels x kTb token vectors over nk quads of one K block, parked in `park` between blocks.
template <class Dot, int NC>
inline void dense_block(const uint8_t* a, size_t row, const int32_t* w, size_t Kq, int nk, int32_t* park,
                        bool first) {
  __m256i acc[NC][kTb];
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c)
#pragma GCC unroll 2
    for (int t = 0; t < kTb; ++t)
      acc[c][t] = first ? _mm256_setzero_si256()
                        : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(park + t * 128 + c * 8));
  for (int k = 0; k < nk; ++k) {
    typename Dot::Act av[kTb];
#pragma GCC unroll 2
    for (int t = 0; t < kTb; ++t) av[t] = Dot::act(load(a + k * row + t * 32));
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      const typename Dot::Weight wb = Dot::weight(w[c * Kq + k]);
#pragma GCC unroll 2
      for (int t = 0; t < kTb; ++t) acc[c][t] = Dot::mac(acc[c][t], av[t], wb);
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c)
#pragma GCC unroll 2
    for (int t = 0; t < kTb; ++t) _mm256_storeu_si256(reinterpret_cast<__m256i*>(park + t * 128 + c * 8), acc[c][t]);
}

// Micro-kernels of NC channels over K blocks that stay in L1, accumulators parked in `acc` between blocks.
template <class Dot, int NC>
void dense_gemm(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc) {
  const size_t Kq = size_t(w.Kq), row = size_t(Mt) * 4;
  const int kb = quads_per_block(Mt, kDenseTileBlockBytes);
  for (int k0 = 0; k0 < w.Kq; k0 += kb) {
    const int nk = std::min(kb, w.Kq - k0);
    const bool first = k0 == 0;
    const int32_t* wq = w.quads + size_t(n0) * Kq + k0;
    for (int t0 = 0; t0 < Mt; t0 += 8 * kTb) {
      const uint8_t* a = tile + size_t(k0) * row + t0 * 4;
      int32_t* park = acc + (t0 / 8) * 128;
      int c = 0;
      for (; c + NC <= nc; c += NC) dense_block<Dot, NC>(a, row, wq + c * Kq, Kq, nk, park + c * 8, first);
      for (; c < nc; ++c) dense_block<Dot, 1>(a, row, wq + c * Kq, Kq, nk, park + c * 8, first);
    }
  }
  finish(acc, Mt, nc);
}

// Entries [e, end) of one channel into TB token vectors, U entries at a time into U accumulator sets (U * TB
// dependency chains), added to the parked sums unless this is the first K block.
template <class Dot, int TB, int U>
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
      const typename Dot::Weight wb = Dot::weight(q[e + u]);
#pragma GCC unroll 4
      for (int t = 0; t < TB; ++t) acc[u][t] = Dot::mac(acc[u][t], Dot::act(load(a + t * 32)), wb);
    }
  }
  for (; e < end; ++e) {
    const uint8_t* a = tile + kq[e] * row;
    const typename Dot::Weight wb = Dot::weight(q[e]);
#pragma GCC unroll 4
    for (int t = 0; t < TB; ++t) acc[0][t] = Dot::mac(acc[0][t], Dot::act(load(a + t * 32)), wb);
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

// Tokens [t0, t0 + 8 * TB) of channels [0, nc) over entries [begin[c], end[c]).
template <class Dot, int TB, int U>
inline void sparse_chunk(const uint8_t* tile, size_t row, int t0, const SparseWeightsView& w, const uint32_t* begin,
                         const uint32_t* end, int nc, int32_t* acc, bool first) {
  for (int c = 0; c < nc; ++c)
    sparse_channel<Dot, TB, U>(tile + t0 * 4, row, w.kq, w.quads, begin[c], end[c], acc + (t0 / 8) * 128 + c * 8,
                               first);
}

// Each channel's CSR list, K cut into blocks whose tile rows stay in L1, the tile in 32-token chunks (4 ymm) so
// that the accumulator sets fit the 16 registers; each channel's list is walked once per chunk.
template <class Dot, int U>
void sparse_gemm(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
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
    for (; t0 + 32 <= Mt; t0 += 32) sparse_chunk<Dot, 4, U>(tile, row, t0, w, begin, end, nc, acc, k0 == 0);
    if (t0 < Mt) sparse_chunk<Dot, 2, U>(tile, row, t0, w, begin, end, nc, acc, k0 == 0);
    for (int c = 0; c < nc; ++c) begin[c] = end[c];
  }
  finish(acc, Mt, nc);
}

}  // namespace ymm
}  // namespace
}  // namespace sbs::kernels
