// Dequantizing epilogue with AVX2+FMA, 8 channels per ymm (two halves of the 16-channel group, masked to nc); the
// operations and their order are those of the scalar epilogue, so the results are bit-exact with it.
#include "kernels-internal.h"

#if SBS_KERNELS_X86
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace sbs::kernels {

void qu8s8_gemm_epilogue_avx2(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i mask[2], w_sum[2];
  __m256 w_scale[2], bias[2];
  for (int h = 0; h < 2; ++h) {
    mask[h] = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8 * h), iota);
    w_sum[h] = _mm256_maskload_epi32(p.w_sum + 8 * h, mask[h]);
    w_scale[h] = _mm256_maskload_ps(p.w_scale + 8 * h, mask[h]);
    bias[h] = _mm256_maskload_ps(p.bias + 8 * h, mask[h]);
  }
  const int halves = nc > 8 ? 2 : 1;
  for (int m = 0; m < rows; ++m) {
    const __m256i zero = _mm256_set1_epi32(p.a_zero[m]);
    const __m256 a_scale = _mm256_set1_ps(p.a_scale[m]);
    for (int h = 0; h < halves; ++h) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + m * kChannelGroup + 8 * h));
      const __m256i centered = _mm256_sub_epi32(a, _mm256_mullo_epi32(zero, w_sum[h]));
      const __m256 scale = _mm256_mul_ps(a_scale, w_scale[h]);
      __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centered), scale, bias[h]);
      if (p.residual) v = _mm256_add_ps(v, _mm256_maskload_ps(p.residual + size_t(m) * p.ld_residual + 8 * h, mask[h]));
      _mm256_maskstore_ps(y + size_t(m) * ldy + 8 * h, mask[h], v);
    }
  }
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
