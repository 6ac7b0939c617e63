// The planar tile of the output-block kernels (kernels.h) from a packed tile, AVX-512: per 16 tokens one byte
// shuffle groups each lane's 4 tokens by input, then a 4x4 dword transpose per lane across 4 such vectors gives
// 64 bytes of each of the quad's 4 rows, already in the planar token order.
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

void u8_planarize_tile_avx512(const uint8_t* tile, int Mt, int Kq, uint8_t* planar) {
  // Per 128-bit lane: 4 tokens x 4 bytes (token-major) -> 4 bytes of each k position (k-major).
  const __m512i by_k = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  const size_t chunk_bytes = size_t(Kq) * 4 * kPlanarChunk;
  for (int m0 = 0; m0 < Mt; m0 += kPlanarChunk) {
    uint8_t* chunk = planar + size_t(m0 / kPlanarChunk) * chunk_bytes;
    const int blocks = std::min(4, (Mt - m0) / 16);
    for (int kq = 0; kq < Kq; ++kq) {
      __m512i z[4];
      for (int i = 0; i < 4; ++i)
        z[i] = i < blocks ? _mm512_shuffle_epi8(_mm512_loadu_si512(tile + (size_t(kq) * Mt + m0 + 16 * i) * 4), by_k)
                          : _mm512_setzero_si512();
      // Row j, lane L, dword i = z[i] lane L dword j: a 4x4 dword transpose in every lane.
      const __m512i a = _mm512_unpacklo_epi32(z[0], z[1]), b = _mm512_unpackhi_epi32(z[0], z[1]);
      const __m512i c = _mm512_unpacklo_epi32(z[2], z[3]), d = _mm512_unpackhi_epi32(z[2], z[3]);
      uint8_t* row = chunk + size_t(4 * kq) * kPlanarChunk;
      _mm512_storeu_si512(row, _mm512_unpacklo_epi64(a, c));
      _mm512_storeu_si512(row + kPlanarChunk, _mm512_unpackhi_epi64(a, c));
      _mm512_storeu_si512(row + 2 * kPlanarChunk, _mm512_unpacklo_epi64(b, d));
      _mm512_storeu_si512(row + 3 * kPlanarChunk, _mm512_unpackhi_epi64(b, d));
    }
  }
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
