// Private: VPDPBUSD as inline asm. GCC 12's _mm512_dpbusd_epi32 / _mm256_dpbusd_avx_epi32 builtins do not tie
// the accumulator to the destination register well: in unrolled loops it emits a register copy per VPDPBUSD and
// spills accumulators to the stack (seen with objdump on the dense and sparse kernels). A "+v"/"+x" asm operand
// keeps each accumulator in one register; other compilers use the intrinsics.
#pragma once

#include <immintrin.h>

namespace sbs::kernels {

// acc += per-lane dot products of the 4 u8 of `u8x4` with the 4 s8 of `s8x4`.
__attribute__((target("avx512f,avx512vnni"), always_inline)) inline __m512i dpbusd512(__m512i acc, __m512i u8x4,
                                                                                        __m512i s8x4) {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8x4), "v"(s8x4));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, u8x4, s8x4);
#endif
}

// The VEX (AVX-VNNI) form: "x" limits the operands to ymm0-15, which VEX can encode.
__attribute__((target("avxvnni,avx2"), always_inline)) inline __m256i dpbusd256_vex(__m256i acc, __m256i u8x4,
                                                                                      __m256i s8x4) {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u8x4), "x"(s8x4));
  return acc;
#else
  return _mm256_dpbusd_avx_epi32(acc, u8x4, s8x4);
#endif
}

}  // namespace sbs::kernels
