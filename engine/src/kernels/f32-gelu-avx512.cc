// GELU over a row, AVX-512: gelu_scalar (f32-gelu.h) on 16 lanes, 4 vectors per step so the polynomial chains of
// independent vectors overlap.
#include "f32-gelu.h"
#include "kernels-internal.h"

#if SBS_KERNELS_X86
#include <immintrin.h>

#pragma GCC push_options
// GCC 12 flags the intentionally undefined pass-through operand inside its own AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

namespace sbs::kernels {

namespace {

inline __m512 gelu16(__m512 x) {
  const __m512 c = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-kGeluClamp)), _mm512_set1_ps(kGeluClamp));
  const __m512 a = _mm512_abs_ps(_mm512_mul_ps(c, _mm512_set1_ps(0.70710678f)));
  __m512 p = _mm512_set1_ps(kGeluA6);
  p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(kGeluA5));
  p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(kGeluA4));
  p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(kGeluA3));
  p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(kGeluA2));
  p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(kGeluA1));
  const __m512 d = _mm512_fmadd_ps(p, a, _mm512_set1_ps(1.0f));
  __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), d);
  r = _mm512_mul_ps(r, r);
  r = _mm512_mul_ps(r, r);
  r = _mm512_mul_ps(r, r);
  r = _mm512_mul_ps(r, r);
  const __m512 h = _mm512_mul_ps(_mm512_mul_ps(c, _mm512_set1_ps(0.5f)), r);
  const __mmask16 nonnegative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  return _mm512_mask_sub_ps(h, nonnegative, x, h);
}

}  // namespace

void f32_gelu_avx512(float* x, int n) {
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 y0 = gelu16(_mm512_loadu_ps(x + i)), y1 = gelu16(_mm512_loadu_ps(x + i + 16));
    const __m512 y2 = gelu16(_mm512_loadu_ps(x + i + 32)), y3 = gelu16(_mm512_loadu_ps(x + i + 48));
    _mm512_storeu_ps(x + i, y0);
    _mm512_storeu_ps(x + i + 16, y1);
    _mm512_storeu_ps(x + i + 32, y2);
    _mm512_storeu_ps(x + i + 48, y3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
