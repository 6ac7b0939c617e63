// Private: turns the channel-major accumulators of the AVX-512 kernels into the acc[m*16 + c] block.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace sbs::kernels {

// The kernels accumulate one zmm per (channel, 16 tokens) and park it at acc[mb*256 + c*16 + t] (token
// mb*16 + t); that 256-int block is exactly where acc[m*16 + c] for those 16 tokens lives, so each block is
// transposed in place in registers.
__attribute__((target("avx512f"), always_inline)) inline void transpose_acc_blocks_avx512(int32_t* acc, int MB) {
  for (int mb = 0; mb < MB; ++mb) {
    int32_t* p = acc + mb * 256;
    __m512i r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(p + 16 * i);
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    // u[4g + i] holds rows 4g..4g+3 at column 4L + i in 128-bit lane L.
    __m512i u[16];
    for (int g = 0; g < 4; ++g) {
      u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]);
      u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]);
      u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int i = 0; i < 4; ++i) {
      const __m512i v = _mm512_shuffle_i32x4(u[i], u[4 + i], 0x88);
      const __m512i w = _mm512_shuffle_i32x4(u[i], u[4 + i], 0xdd);
      const __m512i x = _mm512_shuffle_i32x4(u[8 + i], u[12 + i], 0x88);
      const __m512i y = _mm512_shuffle_i32x4(u[8 + i], u[12 + i], 0xdd);
      r[i] = _mm512_shuffle_i32x4(v, x, 0x88);
      r[8 + i] = _mm512_shuffle_i32x4(v, x, 0xdd);
      r[4 + i] = _mm512_shuffle_i32x4(w, y, 0x88);
      r[12 + i] = _mm512_shuffle_i32x4(w, y, 0xdd);
    }
    for (int i = 0; i < 16; ++i) _mm512_storeu_si512(p + 16 * i, r[i]);
  }
}

}  // namespace sbs::kernels
