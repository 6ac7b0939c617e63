// AVX-512 versions of the per-token operators (fp32 attention, LayerNorm): the portable loops in the other files
// were measured 10-40x slower here (GCC keeps the attention accumulators in memory and cannot if-convert erf).
// Compiled for AVX-512 by function attribute only; the engine picks them at run time when the CPU has AVX-512.
#include <immintrin.h>

#include <cmath>

#include "kernels/transpose-avx512.h"
#include "ops.h"

#define SBS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

namespace sbs {
namespace {

SBS_AVX512 inline __m512 exp512(__m512 x) {
  // e^x = 2^n * e^r, |r| <= ln2/2, degree-6 polynomial; vscalefps applies 2^n without building exponent bits.
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

SBS_AVX512 inline __mmask16 tail_mask(int remaining) {
  return remaining >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << remaining) - 1);
}

// Scores of Q queries against 16 * KV keys per step, from transposed keys kt[d][Lp]: each key vector loaded feeds
// Q FMAs and each query broadcast KV, so loads stay at half the FMAs.
template <int Q, int KV>
SBS_AVX512 inline void scores_step(const float* q, int ld, const float* kt, int Lp, int head_dim, float scale, int j,
                                   float* scores) {
  __m512 acc[Q][KV];
  for (int qi = 0; qi < Q; qi++)
    for (int v = 0; v < KV; v++) acc[qi][v] = _mm512_setzero_ps();
  for (int d = 0; d < head_dim; d++) {
    __m512 k[KV];
    for (int v = 0; v < KV; v++) k[v] = _mm512_loadu_ps(kt + size_t(d) * Lp + j + 16 * v);
    for (int qi = 0; qi < Q; qi++) {
      __m512 qd = _mm512_set1_ps(q[size_t(qi) * ld + d]);
      for (int v = 0; v < KV; v++) acc[qi][v] = _mm512_fmadd_ps(qd, k[v], acc[qi][v]);
    }
  }
  for (int qi = 0; qi < Q; qi++)
    for (int v = 0; v < KV; v++)
      _mm512_storeu_ps(scores + size_t(qi) * Lp + j + 16 * v, _mm512_mul_ps(acc[qi][v], _mm512_set1_ps(scale)));
}

template <int Q>
SBS_AVX512 inline void scores_block(const float* q, int ld, const float* kt, int Lp, int head_dim, float scale,
                                    float* scores) {
  int j = 0;
  for (; j + 64 <= Lp; j += 64) scores_step<Q, 4>(q, ld, kt, Lp, head_dim, scale, j, scores);
  for (; j < Lp; j += 16) scores_step<Q, 1>(q, ld, kt, Lp, head_dim, scale, j, scores);
}

// kt[d][j] = k_j[d] for j < L (zero to Lp), 16 x 16 blocks transposed in registers.
SBS_AVX512 inline void transpose_keys(const float* k, int ld, int L, int Lp, int head_dim, float* kt) {
  alignas(64) int32_t block[256];
  int j = 0;
  for (; j + 16 <= L; j += 16)
    for (int d = 0; d < head_dim; d += 16) {
      for (int r = 0; r < 16; r++)
        _mm512_store_si512(block + 16 * r, _mm512_castps_si512(_mm512_loadu_ps(k + size_t(j + r) * ld + d)));
      kernels::transpose_acc_blocks_avx512(block, 1);
      for (int r = 0; r < 16; r++)
        _mm512_storeu_ps(kt + size_t(d + r) * Lp + j, _mm512_castsi512_ps(_mm512_load_si512(block + 16 * r)));
    }
  for (int d = 0; d < head_dim; d++) {
    float* row = kt + size_t(d) * Lp;
    for (int jj = j; jj < L; jj++) row[jj] = k[size_t(jj) * ld + d];
    for (int jj = L; jj < Lp; jj++) row[jj] = 0.0f;
  }
}

SBS_AVX512 inline void softmax512(float* p, int L) {
  __m512 vmax = _mm512_set1_ps(-3.4e38f);
  for (int j = 0; j < L; j += 16)
    vmax = _mm512_mask_max_ps(vmax, tail_mask(L - j), vmax, _mm512_maskz_loadu_ps(tail_mask(L - j), p + j));
  __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 sum = _mm512_setzero_ps();
  for (int j = 0; j < L; j += 16) {
    __mmask16 m = tail_mask(L - j);
    __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + j), max));
    e = _mm512_maskz_mov_ps(m, e);
    sum = _mm512_add_ps(sum, e);
    _mm512_mask_storeu_ps(p + j, m, e);
  }
  __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int j = 0; j < L; j += 16) {
    __mmask16 m = tail_mask(L - j);
    _mm512_mask_storeu_ps(p + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), inv));
  }
}

// ctx[qi][0..64) = sum_j p[qi][j] v_j, four 16-wide slices of the head per step (head_dim == 64), or one slice.
template <int Q, int S>
SBS_AVX512 inline void context_block(const float* p, int Lp, const float* v, int ld, int L, int d0, float* ctx, int ldc) {
  __m512 acc[Q][S];
  for (int qi = 0; qi < Q; qi++)
    for (int s = 0; s < S; s++) acc[qi][s] = _mm512_setzero_ps();
  for (int j = 0; j < L; j++) {
    __m512 vj[S];
    for (int s = 0; s < S; s++) vj[s] = _mm512_loadu_ps(v + size_t(j) * ld + d0 + 16 * s);
    for (int qi = 0; qi < Q; qi++) {
      __m512 pj = _mm512_set1_ps(p[size_t(qi) * Lp + j]);
      for (int s = 0; s < S; s++) acc[qi][s] = _mm512_fmadd_ps(pj, vj[s], acc[qi][s]);
    }
  }
  for (int qi = 0; qi < Q; qi++)
    for (int s = 0; s < S; s++) _mm512_storeu_ps(ctx + size_t(qi) * ldc + d0 + 16 * s, acc[qi][s]);
}

template <int Q>
SBS_AVX512 inline void context(const float* p, int Lp, const float* v, int ld, int L, int head_dim, float* ctx, int ldc) {
  int d0 = 0;
  for (; d0 + 64 <= head_dim; d0 += 64) context_block<Q, 4>(p, Lp, v, ld, L, d0, ctx, ldc);
  for (; d0 < head_dim; d0 += 16) context_block<Q, 1>(p, Lp, v, ld, L, d0, ctx, ldc);
}

}  // namespace

SBS_AVX512 void layer_norm_row_avx512(const float* x, const float* gamma, const float* beta, int n, float eps,
                                      float* out) {
  __m512 sum = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  const float mean = _mm512_reduce_add_ps(sum) / float(n);
  const __m512 vmean = _mm512_set1_ps(mean);
  __m512 squares = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vmean);
    squares = _mm512_fmadd_ps(d, d, squares);
  }
  const float variance = _mm512_reduce_add_ps(squares) / float(n);
  const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(variance + eps));
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    __m512 normed = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), inv);
    __m512 y = _mm512_fmadd_ps(normed, _mm512_maskz_loadu_ps(m, gamma + i), _mm512_maskz_loadu_ps(m, beta + i));
    _mm512_mask_storeu_ps(out + i, m, y);
  }
}

SBS_AVX512 void attention_head_avx512(const float* q, const float* k, const float* v, int ld, int L, int head_dim,
                                      float* ctx, int ldc, float* scratch) {
  if (head_dim % 16 != 0) return attention_head(q, k, v, ld, L, head_dim, ctx, ldc, scratch);
  const int Lp = (L + 15) / 16 * 16;
  float* kt = scratch;
  float* probs = scratch + size_t(head_dim) * Lp;
  transpose_keys(k, ld, L, Lp, head_dim, kt);
  const float scale = 1.0f / std::sqrt(float(head_dim));
  int i = 0;
  for (; i + 4 <= L; i += 4) {
    scores_block<4>(q + size_t(i) * ld, ld, kt, Lp, head_dim, scale, probs);
    for (int qi = 0; qi < 4; qi++) softmax512(probs + size_t(qi) * Lp, L);
    context<4>(probs, Lp, v, ld, L, head_dim, ctx + size_t(i) * ldc, ldc);
  }
  for (; i < L; i++) {
    scores_block<1>(q + size_t(i) * ld, ld, kt, Lp, head_dim, scale, probs);
    softmax512(probs, L);
    context<1>(probs, Lp, v, ld, L, head_dim, ctx + size_t(i) * ldc, ldc);
  }
}

}  // namespace sbs
