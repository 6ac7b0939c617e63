// Dequantizing epilogue, one token (16 channels, masked to nc) per zmm; the operations and their order are those
// of the scalar epilogue (int32 subtract, int->float, float scale product, one FMA, then the residual add).
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

void qu8s8_gemm_epilogue_avx512(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy) {
  const __mmask16 mask = __mmask16((1u << nc) - 1);
  const __m512i w_sum = _mm512_maskz_loadu_epi32(mask, p.w_sum);
  const __m512 w_scale = _mm512_maskz_loadu_ps(mask, p.w_scale);
  const __m512 bias = _mm512_maskz_loadu_ps(mask, p.bias);
  // Locals, not p's fields: the stores to y could alias p, and GCC reloaded every field in every iteration.
  const float* a_scale = p.a_scale;
  const int32_t* a_zero = p.a_zero;
  const float* residual = p.residual;
  const size_t ld_residual = size_t(p.ld_residual);
  for (int m = 0; m < rows; ++m) {
    const __m512i a = _mm512_loadu_si512(acc + m * kChannelGroup);
    const __m512i centered = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(a_zero[m]), w_sum));
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(a_scale[m]), w_scale);
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(centered), scale, bias);
    if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, residual + size_t(m) * ld_residual));
    _mm512_mask_storeu_ps(y + size_t(m) * ldy, mask, v);
  }
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
