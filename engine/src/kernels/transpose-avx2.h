// Private: turns the channel-major accumulators of the AVX2 / AVX-VNNI kernels into the acc[m*16 + c] block.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace sbs::kernels {

// The ymm kernels park one vector per (channel, 8 tokens) at acc[tb*128 + c*8 + t] (token tb*8 + t); that
// 128-int block is where acc[m*16 + c] of those 8 tokens lives, so each block is transposed in place as two 8x8.
__attribute__((target("avx2"), always_inline)) inline void transpose_acc_blocks_avx2(int32_t* acc, int TB) {
  for (int tb = 0; tb < TB; ++tb) {
    int32_t* p = acc + tb * 128;
    __m256i out[2][8];
    for (int half = 0; half < 2; ++half) {
      __m256i r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + (half * 8 + i) * 8));
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
      }
      // u[4g + i] holds rows 4g..4g+3 at column i (low lane) and 4 + i (high lane).
      for (int g = 0; g < 2; ++g) {
        u[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]);
        u[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]);
        u[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
      }
      for (int i = 0; i < 4; ++i) {
        out[half][i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x20);
        out[half][4 + i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x31);
      }
    }
    for (int t = 0; t < 8; ++t) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + t * 16), out[0][t]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + t * 16 + 8), out[1][t]);
    }
  }
}

}  // namespace sbs::kernels
