// The planar tile of the output-block kernels (kernels.h) from a packed tile, AVX2: the AVX-512 steps on the two
// ymm halves of each 64-byte row (every step stays inside a 128-bit lane).
#include "kernels-internal.h"

#if SBS_KERNELS_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace sbs::kernels {

void u8_planarize_tile_avx2(const uint8_t* tile, int Mt, int Kq, uint8_t* planar) {
  const __m256i by_k = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const size_t chunk_bytes = size_t(Kq) * 4 * kPlanarChunk;
  for (int m0 = 0; m0 < Mt; m0 += kPlanarChunk) {
    uint8_t* chunk = planar + size_t(m0 / kPlanarChunk) * chunk_bytes;
    const int blocks = std::min(4, (Mt - m0) / 16);
    for (int kq = 0; kq < Kq; ++kq)
      for (int half = 0; half < 2; ++half) {
        __m256i z[4];
        for (int i = 0; i < 4; ++i)
          z[i] = i < blocks ? _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                                      tile + (size_t(kq) * Mt + m0 + 16 * i) * 4 + 32 * half)),
                                                  by_k)
                            : _mm256_setzero_si256();
        const __m256i a = _mm256_unpacklo_epi32(z[0], z[1]), b = _mm256_unpackhi_epi32(z[0], z[1]);
        const __m256i c = _mm256_unpacklo_epi32(z[2], z[3]), d = _mm256_unpackhi_epi32(z[2], z[3]);
        uint8_t* row = chunk + size_t(4 * kq) * kPlanarChunk + 32 * half;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row), _mm256_unpacklo_epi64(a, c));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + kPlanarChunk), _mm256_unpackhi_epi64(a, c));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + 2 * kPlanarChunk), _mm256_unpacklo_epi64(b, d));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + 3 * kPlanarChunk), _mm256_unpackhi_epi64(b, d));
      }
  }
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
