// Private: the output-block sparse tile GEMM for 8-token ymm vectors, shared by the AVX-VNNI and the AVX2 kernels
// through their `Dot` policy (qu8s8-tile-ymm.h). Per tuple of 4 inputs the 4 planar rows are interleaved into VNNI
// order (in-lane byte and word unpacks, 8 consecutive tokens per ymm) and each vector feeds the 4 channels of the
// block. Per pass over a block's tuples one 16-token group i of the 64-token chunk (its two ymm halves) x 4
// channels: 8 accumulators, which with the operands fit the 16 registers. Include after the file's target pragma.
#pragma once

#include <immintrin.h>

#include "qu8s8-tile-ymm.h"

namespace sbs::kernels {
namespace {
namespace ymm {

// Tokens 16i + 8h .. +7 of 4 planar rows, h = 0, 1, in VNNI order.
template <int I>
inline void interleave4(const uint8_t* chunk, const uint16_t* k, __m256i* v) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* base = chunk + 32 * h;
    const __m256i r0 = load(base + size_t(k[0]) * kPlanarChunk), r1 = load(base + size_t(k[1]) * kPlanarChunk);
    const __m256i r2 = load(base + size_t(k[2]) * kPlanarChunk), r3 = load(base + size_t(k[3]) * kPlanarChunk);
    const __m256i p01 = I < 2 ? _mm256_unpacklo_epi8(r0, r1) : _mm256_unpackhi_epi8(r0, r1);
    const __m256i p23 = I < 2 ? _mm256_unpacklo_epi8(r2, r3) : _mm256_unpackhi_epi8(r2, r3);
    v[h] = I % 2 == 0 ? _mm256_unpacklo_epi16(p01, p23) : _mm256_unpackhi_epi16(p01, p23);
  }
}

template <class Dot, int I>
inline void out_block_group(const uint8_t* chunk, const uint16_t* k, const int32_t* w, uint32_t t, uint32_t end,
                            int32_t* park) {
  __m256i acc[kOutBlock][2];
#pragma GCC unroll 4
  for (int c = 0; c < kOutBlock; ++c) acc[c][0] = acc[c][1] = _mm256_setzero_si256();
  for (; t < end; ++t) {
    __m256i v[2];
    interleave4<I>(chunk, k + size_t(t) * 4, v);
    const typename Dot::Act a0 = Dot::act(v[0]), a1 = Dot::act(v[1]);
#pragma GCC unroll 4
    for (int c = 0; c < kOutBlock; ++c) {
      const typename Dot::Weight wb = Dot::weight(w[size_t(t) * 4 + c]);
      acc[c][0] = Dot::mac(acc[c][0], a0, wb);
      acc[c][1] = Dot::mac(acc[c][1], a1, wb);
    }
  }
  // Token block 2I + h, channel c of the 16-channel group's parked layout.
#pragma GCC unroll 4
  for (int c = 0; c < kOutBlock; ++c)
    for (int h = 0; h < 2; ++h)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(park + (2 * I + h) * 128 + c * 8), acc[c][h]);
}

template <class Dot>
void out_block_gemm(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc, int32_t* acc) {
  const size_t chunk_bytes = size_t(w.Kq) * 4 * kPlanarChunk;
  for (int m0 = 0; m0 < Mt; m0 += kPlanarChunk) {
    const uint8_t* chunk = planar + size_t(m0 / kPlanarChunk) * chunk_bytes;
    int32_t* park = acc + m0 * kChannelGroup;
    const int groups = std::min(4, (Mt - m0) / 16);
    for (int c0 = 0; c0 < nc; c0 += kOutBlock) {
      const int b = (n0 + c0) / kOutBlock;
      const uint32_t t = w.block_begin[b], end = w.block_begin[b + 1];
      int32_t* p = park + c0 * 8;
      out_block_group<Dot, 0>(chunk, w.k, w.w, t, end, p);
      if (groups > 1) out_block_group<Dot, 1>(chunk, w.k, w.w, t, end, p);
      if (groups > 2) out_block_group<Dot, 2>(chunk, w.k, w.w, t, end, p);
      if (groups > 3) out_block_group<Dot, 3>(chunk, w.k, w.w, t, end, p);
    }
  }
  finish(acc, Mt, (nc + kOutBlock - 1) / kOutBlock * kOutBlock);
}

}  // namespace ymm
}  // namespace
}  // namespace sbs::kernels
