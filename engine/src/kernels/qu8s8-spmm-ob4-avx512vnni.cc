// Output-block sparse tile GEMM, AVX512-VNNI. A block of 4 output channels shares its non-zero inputs; per tuple of
// 4 such inputs the 4 planar activation rows (64 tokens each) are interleaved into VNNI order with 4 in-lane byte
// and 4 word unpacks (the planar layout's token order makes each result 16 consecutive tokens), and every
// interleaved vector feeds 4 VPDPBUSD, one per channel of the block: no lane multiplies a zero weight and each
// activation load serves 4 outputs. Weight tuples stream in order, so the hardware prefetchers follow them.
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"
#include "transpose-avx512.h"
#include "vnni-asm.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
// GCC 12 flags the intentionally undefined pass-through operand inside its own AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")

namespace sbs::kernels {

namespace {

// The 16-token vectors v[0..MB) of 4 planar rows in VNNI order (byte j of token m = row j's byte of m).
template <int MB>
inline void interleave4(const uint8_t* chunk, const uint16_t* k, __m512i* v) {
  const __m512i r0 = _mm512_loadu_si512(chunk + size_t(k[0]) * kPlanarChunk);
  const __m512i r1 = _mm512_loadu_si512(chunk + size_t(k[1]) * kPlanarChunk);
  const __m512i r2 = _mm512_loadu_si512(chunk + size_t(k[2]) * kPlanarChunk);
  const __m512i r3 = _mm512_loadu_si512(chunk + size_t(k[3]) * kPlanarChunk);
  const __m512i lo01 = _mm512_unpacklo_epi8(r0, r1), lo23 = _mm512_unpacklo_epi8(r2, r3);
  v[0] = _mm512_unpacklo_epi16(lo01, lo23);
  if (MB > 1) v[1] = _mm512_unpackhi_epi16(lo01, lo23);
  if (MB > 2) {
    const __m512i hi01 = _mm512_unpackhi_epi8(r0, r1), hi23 = _mm512_unpackhi_epi8(r2, r3);
    v[2] = _mm512_unpacklo_epi16(hi01, hi23);
    if (MB > 3) v[3] = _mm512_unpackhi_epi16(hi01, hi23);
  }
}

// One block's 4 channels x MB token vectors over tuples [t, end), parked at park[i*256 + c*16]. U tuples go into U
// accumulator sets, so that 4*MB*U dependency chains cover the VPDPBUSD latency for short tiles too.
template <int MB, int U>
inline void out_block(const uint8_t* chunk, const uint16_t* k, const int32_t* w, uint32_t t, uint32_t end,
                      int32_t* park) {
  __m512i acc[U][kOutBlock][MB];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
    for (int c = 0; c < kOutBlock; ++c)
#pragma GCC unroll 4
      for (int i = 0; i < MB; ++i) acc[u][c][i] = _mm512_setzero_si512();
  for (; t + U <= end; t += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      __m512i v[MB];
      interleave4<MB>(chunk, k + size_t(t + u) * 4, v);
#pragma GCC unroll 4
      for (int c = 0; c < kOutBlock; ++c) {
        const __m512i wb = _mm512_set1_epi32(w[size_t(t + u) * 4 + c]);
#pragma GCC unroll 4
        for (int i = 0; i < MB; ++i) acc[u][c][i] = dpbusd512(acc[u][c][i], v[i], wb);
      }
    }
  }
  for (; t < end; ++t) {
    __m512i v[MB];
    interleave4<MB>(chunk, k + size_t(t) * 4, v);
#pragma GCC unroll 4
    for (int c = 0; c < kOutBlock; ++c) {
      const __m512i wb = _mm512_set1_epi32(w[size_t(t) * 4 + c]);
#pragma GCC unroll 4
      for (int i = 0; i < MB; ++i) acc[0][c][i] = dpbusd512(acc[0][c][i], v[i], wb);
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < kOutBlock; ++c)
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      __m512i s = acc[0][c][i];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) s = _mm512_add_epi32(s, acc[u][c][i]);
      _mm512_storeu_si512(park + i * 256 + c * 16, s);
    }
}

template <int MB>
void out_blocks(const uint8_t* chunk, const OutBlockWeightsView& w, int n0, int nc, int32_t* park) {
  constexpr int U = MB == 1 ? 3 : MB == 2 ? 2 : 1;
  for (int c0 = 0; c0 < nc; c0 += kOutBlock) {
    const int b = (n0 + c0) / kOutBlock;
    out_block<MB, U>(chunk, w.k, w.w, w.block_begin[b], w.block_begin[b + 1], park + c0 * 16);
  }
}

}  // namespace

void qu8s8_spmm_ob4_avx512vnni(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc,
                               int32_t* acc) {
  const size_t chunk_bytes = size_t(w.Kq) * 4 * kPlanarChunk;
  for (int m0 = 0; m0 < Mt; m0 += kPlanarChunk) {
    const uint8_t* chunk = planar + size_t(m0 / kPlanarChunk) * chunk_bytes;
    int32_t* park = acc + m0 * kChannelGroup;
    switch (std::min(4, (Mt - m0) / 16)) {
      case 1: out_blocks<1>(chunk, w, n0, nc, park); break;
      case 2: out_blocks<2>(chunk, w, n0, nc, park); break;
      case 3: out_blocks<3>(chunk, w, n0, nc, park); break;
      case 4: out_blocks<4>(chunk, w, n0, nc, park); break;
      default: return;  // not a valid tile height (a multiple of 16 up to kMaxTileRows)
    }
  }
  // Channels of blocks not run are unspecified, but the transposes read them: give them defined values.
  const int run = (nc + kOutBlock - 1) / kOutBlock * kOutBlock;
  for (int c = run; c < kChannelGroup; ++c)
    for (int mb = 0; mb < Mt / 16; ++mb) _mm512_storeu_si512(acc + mb * 256 + c * 16, _mm512_setzero_si512());
  transpose_acc_blocks_avx512(acc, Mt / 16);
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
