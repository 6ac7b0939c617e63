// Int8 attention for one head of one row, AVX512-VNNI: both matrix products as VPDPBUSD (64 multiply-adds per
// instruction, 4x the fp32 FMA rate). Scores: 4 queries x 64 keys per step, key quads as lanes, each query's u8
// quad broadcast. Context: 4 queries x 64 dimensions, value quads (4 consecutive keys) as lanes, each query's u8
// probability quad broadcast. The float steps (quantizers, softmax, dequantization) are those of the scalar
// reference (qu8s8-attention-scalar.cc), lane by lane in the same order, so the two agree bit for bit.
#include <cstring>

#include "qu8s8-attention.h"
#include "vnni-asm.h"

#if SBS_KERNELS_X86
#include <immintrin.h>

#pragma GCC push_options
// GCC 12 flags the intentionally undefined pass-through operand inside its own AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")

namespace sbs::kernels {

namespace {

inline __mmask16 tail(int remaining) { return remaining >= 16 ? __mmask16(0xffff) : __mmask16((1u << remaining) - 1); }

// attention_exp (qu8s8-attention.h) on 16 lanes.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
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

// One token's head slice as s8 (symmetric): 16 bytes per 16 dimensions into out[d]; returns the scale.
inline float quantize_symmetric(const float* x, int head_dim, int8_t* out, int32_t* sum) {
  __m512 amax = _mm512_setzero_ps();
  for (int d = 0; d < head_dim; d += 16) amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(x + d)));
  const float scale = symmetric_scale(_mm512_reduce_max_ps(amax));
  const __m512 inv = _mm512_set1_ps(1.0f / scale);
  __m512i total = _mm512_setzero_si512();
  for (int d = 0; d < head_dim; d += 16) {
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + d), inv));
    q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
    total = _mm512_add_epi32(total, q);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + d), _mm512_cvtepi32_epi8(q));
  }
  if (sum) *sum = _mm512_reduce_add_epi32(total);
  return scale;
}

void quantize_keys_values(const float* k, const float* v, int ld, const AttentionLayout& a) {
  const int hd = a.head_dim;
  const size_t Lp = size_t(a.Lp);
  alignas(64) int8_t rows[4][256];
  for (int j0 = 0; j0 < a.Lp; j0 += 4) {
    for (int t = 0; t < 4; ++t) {
      const int j = j0 + t;
      if (j < a.L) {
        int8_t* kr = rows[t];
        a.kscale[j] = quantize_symmetric(k + size_t(j) * ld, hd, kr, &a.ksum[j]);
        for (int d = 0; d < hd; d += 4) std::memcpy(a.kq + (size_t(d / 4) * Lp + j) * 4, kr + d, 4);
        a.vscale[j] = quantize_symmetric(v + size_t(j) * ld, hd, rows[t], nullptr);
      } else {
        std::memset(rows[t], 0, size_t(hd));
        for (int d = 0; d < hd; d += 4) std::memset(a.kq + (size_t(d / 4) * Lp + j) * 4, 0, 4);
        a.ksum[j] = 0;
        a.kscale[j] = a.vscale[j] = 0.0f;
      }
    }
    // Value quads of these 4 keys: for each dimension its 4 keys' bytes, 16 dimensions per 64 bytes.
    int8_t* out = a.vq + size_t(j0 / 4) * hd * 4;
    for (int d = 0; d < hd; d += 16) {
      const __m128i x0 = _mm_load_si128(reinterpret_cast<const __m128i*>(rows[0] + d));
      const __m128i x1 = _mm_load_si128(reinterpret_cast<const __m128i*>(rows[1] + d));
      const __m128i x2 = _mm_load_si128(reinterpret_cast<const __m128i*>(rows[2] + d));
      const __m128i x3 = _mm_load_si128(reinterpret_cast<const __m128i*>(rows[3] + d));
      const __m128i lo01 = _mm_unpacklo_epi8(x0, x1), hi01 = _mm_unpackhi_epi8(x0, x1);
      const __m128i lo23 = _mm_unpacklo_epi8(x2, x3), hi23 = _mm_unpackhi_epi8(x2, x3);
      __m128i* o = reinterpret_cast<__m128i*>(out + size_t(d) * 4);
      _mm_storeu_si128(o, _mm_unpacklo_epi16(lo01, lo23));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(lo01, lo23));
      _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(hi01, hi23));
      _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(hi01, hi23));
    }
  }
}

inline int32_t quad_at(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// scores[qi][j] for j < Lp of Q quantized queries: 16 * KV keys per step.
template <int Q, int KV>
inline void scores_step(const AttentionLayout& a, const int32_t* zero, const float* qscale, int j, float* scores) {
  __m512i acc[Q][KV];
  for (int qi = 0; qi < Q; ++qi)
    for (int v = 0; v < KV; ++v) acc[qi][v] = _mm512_setzero_si512();
  const size_t Lp = size_t(a.Lp);
  for (int dq = 0; dq < a.head_dim / 4; ++dq) {
    __m512i kv[KV];
    for (int v = 0; v < KV; ++v) kv[v] = _mm512_loadu_si512(a.kq + (size_t(dq) * Lp + j + 16 * v) * 4);
    for (int qi = 0; qi < Q; ++qi) {
      const __m512i qb = _mm512_set1_epi32(quad_at(a.qq + size_t(qi) * a.head_dim + 4 * dq));
      for (int v = 0; v < KV; ++v) acc[qi][v] = dpbusd512(acc[qi][v], qb, kv[v]);
    }
  }
  for (int qi = 0; qi < Q; ++qi)
    for (int v = 0; v < KV; ++v) {
      const int jj = j + 16 * v;
      const __m512i ksum = _mm512_loadu_si512(a.ksum + jj);
      const __m512i s = _mm512_sub_epi32(acc[qi][v], _mm512_mullo_epi32(_mm512_set1_epi32(zero[qi]), ksum));
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(qscale[qi]), _mm512_loadu_ps(a.kscale + jj));
      _mm512_storeu_ps(scores + size_t(qi) * Lp + jj, _mm512_mul_ps(_mm512_cvtepi32_ps(s), scale));
    }
}

// Softmax of one query's scores into u8 probabilities times the value scales; returns the context's scale.
inline float softmax_quantize(float* p, const AttentionLayout& a, uint8_t* pq) {
  const int L = a.L;
  __m512 vmax = _mm512_set1_ps(-3.4e38f);
  for (int j = 0; j < L; j += 16) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, tail(L - j), p + j));
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  // kSoftmaxSets independent chains: each exp is a dependent polynomial, one running sum would serialize them.
  __m512 sum[kSoftmaxSets], pmax[kSoftmaxSets];
  for (int s = 0; s < kSoftmaxSets; ++s) sum[s] = pmax[s] = _mm512_setzero_ps();
  auto step = [&](int j, int s, __mmask16 m) {
    const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + j), max)));
    sum[s] = _mm512_add_ps(sum[s], e);
    const __m512 pv = _mm512_mul_ps(e, _mm512_maskz_loadu_ps(m, a.vscale + j));
    pmax[s] = _mm512_max_ps(pmax[s], pv);
    _mm512_storeu_ps(p + j, pv);
  };
  int j = 0;
  for (; j + 16 * kSoftmaxSets <= L; j += 16 * kSoftmaxSets)
    for (int s = 0; s < kSoftmaxSets; ++s) step(j + 16 * s, s, __mmask16(0xffff));
  for (; j < L; j += 16) step(j, (j / 16) % kSoftmaxSets, tail(L - j));
  alignas(64) float sets[kSoftmaxSets][16];
  for (int s = 0; s < kSoftmaxSets; ++s) _mm512_store_ps(sets[s], sum[s]);
  const float total = sum_softmax_partials(sets);
  const __m512 pmax_all = _mm512_max_ps(_mm512_max_ps(pmax[0], pmax[1]), _mm512_max_ps(pmax[2], pmax[3]));
  const float top = _mm512_reduce_max_ps(pmax_all);
  const float pscale = top > 0 ? top / 255.0f : 1.0f;
  const __m512 pinv = _mm512_set1_ps(1.0f / pscale);
  for (int j = 0; j < a.Lp; j += 16) {
    const __mmask16 m = j < L ? tail(L - j) : __mmask16(0);
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), pinv));
    q = _mm512_maskz_mov_epi32(m, _mm512_min_epi32(q, _mm512_set1_epi32(255)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(pq + j), _mm512_cvtepi32_epi8(q));
  }
  return pscale * (1.0f / total);
}

// ctx[qi][d0 + 16 s] of Q queries from their u8 probabilities, S x 16 dimensions per step.
template <int Q, int S>
inline void context_step(const AttentionLayout& a, const float* out_scale, int d0, float* ctx, int ldc) {
  __m512i acc[Q][S];
  for (int qi = 0; qi < Q; ++qi)
    for (int s = 0; s < S; ++s) acc[qi][s] = _mm512_setzero_si512();
  const int quads = (a.L + 3) / 4;
  for (int jq = 0; jq < quads; ++jq) {
    __m512i vv[S];
    for (int s = 0; s < S; ++s) vv[s] = _mm512_loadu_si512(a.vq + (size_t(jq) * a.head_dim + d0 + 16 * s) * 4);
    for (int qi = 0; qi < Q; ++qi) {
      const __m512i pb = _mm512_set1_epi32(quad_at(a.pq + size_t(qi) * a.Lp + 4 * jq));
      for (int s = 0; s < S; ++s) acc[qi][s] = dpbusd512(acc[qi][s], pb, vv[s]);
    }
  }
  for (int qi = 0; qi < Q; ++qi)
    for (int s = 0; s < S; ++s)
      _mm512_storeu_ps(ctx + size_t(qi) * ldc + d0 + 16 * s,
                       _mm512_mul_ps(_mm512_cvtepi32_ps(acc[qi][s]), _mm512_set1_ps(out_scale[qi])));
}

template <int Q>
void query_block(const float* q, int ld, const AttentionLayout& a, float softmax_scale, float* ctx, int ldc) {
  const int hd = a.head_dim;
  int32_t zero[Q];
  float qscale[Q], out_scale[Q];
  for (int qi = 0; qi < Q; ++qi) {
    const float* x = q + size_t(qi) * ld;
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    for (int d = 0; d < hd; d += 16) {
      const __m512 v = _mm512_loadu_ps(x + d);
      lo = _mm512_min_ps(lo, v);
      hi = _mm512_max_ps(hi, v);
    }
    const QuantParams qp = quant_params(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    const __m512 inv = _mm512_set1_ps(qp.inv_scale);
    for (int d = 0; d < hd; d += 16) {
      __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + d), inv)),
                                   _mm512_set1_epi32(qp.zero));
      v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_setzero_si512()), _mm512_set1_epi32(255));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qq + size_t(qi) * hd + d), _mm512_cvtepi32_epi8(v));
    }
    zero[qi] = qp.zero;
    qscale[qi] = qp.scale * softmax_scale;
  }
  int j = 0;
  for (; j + 64 <= a.Lp; j += 64) scores_step<Q, 4>(a, zero, qscale, j, a.probs);
  for (; j < a.Lp; j += 16) scores_step<Q, 1>(a, zero, qscale, j, a.probs);
  for (int qi = 0; qi < Q; ++qi)
    out_scale[qi] = softmax_quantize(a.probs + size_t(qi) * a.Lp, a, a.pq + size_t(qi) * a.Lp);
  int d0 = 0;
  for (; d0 + 64 <= hd; d0 += 64) context_step<Q, 4>(a, out_scale, d0, ctx, ldc);
  for (; d0 < hd; d0 += 16) context_step<Q, 1>(a, out_scale, d0, ctx, ldc);
}

}  // namespace

void qu8s8_attention_head_avx512vnni(const float* q, const float* k, const float* v, int ld, int L, int head_dim,
                                     float* ctx, int ldc, void* scratch) {
  const AttentionLayout a = attention_layout(scratch, L, head_dim);
  quantize_keys_values(k, v, ld, a);
  const float softmax_scale = 1.0f / std::sqrt(float(head_dim));
  int i = 0;
  for (; i + 4 <= L; i += 4)
    query_block<4>(q + size_t(i) * ld, ld, a, softmax_scale, ctx + size_t(i) * ldc, ldc);
  for (; i < L; ++i) query_block<1>(q + size_t(i) * ld, ld, a, softmax_scale, ctx + size_t(i) * ldc, ldc);
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
