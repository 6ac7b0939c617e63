// Int8 attention for one head of one row, AVX512-VNNI: both matrix products as VPDPBUSD (64 multiply-adds per
// instruction, 4x the fp32 FMA rate). Scores: 4 queries x 64 keys per step, key quads as lanes, each query's u8
// quad broadcast. Context: 4 queries x 64 dimensions, value quads (4 consecutive keys) as lanes, each query's u8
// probability quad broadcast. The float steps (quantizers, softmax, dequantization) are those of the scalar
// reference (qu8s8-attention-scalar.cc), lane by lane in the same order, so the two agree bit for bit.
#include <cstring>

#include "qu8s8-attention.h"
#include "transpose-avx512.h"
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

// attention_exp2 (qu8s8-attention.h) on 16 lanes.
inline __m512 exp2_16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(0.00961813f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.0555041f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.240226507f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.693147182f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
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

// Keys and values of 16 tokens at a time: each token's s8 row, then the keys' rows transposed as dwords (16 quads
// x 16 keys per in-register 16x16 transpose) into whole 64-byte lines of the key layout, and the values' bytes of
// each 4 tokens interleaved per dimension.
void quantize_keys_values(const float* k, const float* v, int ld, const AttentionLayout& a) {
  const int hd = a.head_dim, quads = hd / 4;
  const size_t Lp = size_t(a.Lp);
  alignas(64) int8_t krows[16][kMaxInt8AttentionHeadDim];
  alignas(64) int8_t vrows[16][kMaxInt8AttentionHeadDim];
  alignas(64) int32_t block[256];
  alignas(64) float vinv[kMaxInt8AttentionHeadDim];
  // Values: one symmetric scale per dimension over the row's tokens.
  for (int d = 0; d < hd; d += 16) {
    __m512 amax = _mm512_setzero_ps();
    for (int j = 0; j < a.L; ++j) amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(v + size_t(j) * ld + d)));
    const __m512 scale = _mm512_mask_div_ps(_mm512_set1_ps(1.0f), _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ),
                                            amax, _mm512_set1_ps(127.0f));
    _mm512_storeu_ps(a.vscale + d, scale);
    _mm512_store_ps(vinv + d, _mm512_div_ps(_mm512_set1_ps(1.0f), scale));
  }
  for (int j0 = 0; j0 < a.Lp; j0 += 16) {
    for (int t = 0; t < 16; ++t) {
      const int j = j0 + t;
      if (j < a.L) {
        a.kscale[j] = quantize_symmetric(k + size_t(j) * ld, hd, krows[t], &a.ksum[j]);
        const float* vr = v + size_t(j) * ld;
        for (int d = 0; d < hd; d += 16) {
          __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(vr + d), _mm512_load_ps(vinv + d)));
          q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
          _mm_store_si128(reinterpret_cast<__m128i*>(vrows[t] + d), _mm512_cvtepi32_epi8(q));
        }
      } else {
        std::memset(krows[t], 0, size_t(hd));
        std::memset(vrows[t], 0, size_t(hd));
        a.ksum[j] = 0;
        a.kscale[j] = 0.0f;
      }
    }
    for (int q0 = 0; q0 < quads; q0 += 16) {
      const int nq = std::min(16, quads - q0);
      for (int t = 0; t < 16; ++t) {
        std::memcpy(block + 16 * t, krows[t] + 4 * q0, size_t(nq) * 4);
        if (nq < 16) std::memset(block + 16 * t + nq, 0, size_t(16 - nq) * 4);
      }
      transpose_acc_blocks_avx512(block, 1);  // block[16 * quad + key]
      for (int d = 0; d < nq; ++d)
        _mm512_storeu_si512(a.kq + (size_t(q0 + d) * Lp + j0) * 4, _mm512_load_si512(block + 16 * d));
    }
    // Value quads of each 4 keys: for each dimension its 4 keys' bytes, 16 dimensions per 64 bytes.
    for (int t0 = 0; t0 < 16; t0 += 4) {
      int8_t* out = a.vq + size_t((j0 + t0) / 4) * hd * 4;
      for (int d = 0; d < hd; d += 16) {
        const __m128i x0 = _mm_load_si128(reinterpret_cast<const __m128i*>(vrows[t0] + d));
        const __m128i x1 = _mm_load_si128(reinterpret_cast<const __m128i*>(vrows[t0 + 1] + d));
        const __m128i x2 = _mm_load_si128(reinterpret_cast<const __m128i*>(vrows[t0 + 2] + d));
        const __m128i x3 = _mm_load_si128(reinterpret_cast<const __m128i*>(vrows[t0 + 3] + d));
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

// Softmax of one query's scores into u8 probabilities: 2^(s - max) (largest exactly 1) at the fixed scale 1/255 in
// the same pass as the sum; returns the context's scale 1 / (255 x sum). Full vectors without masks in the main
// loops (4 independent chains), the partial last vector masked.
inline float softmax_quantize(const float* p, const AttentionLayout& a, uint8_t* pq) {
  const int L = a.L, full = L / 16 * 16;
  __m512 m0 = _mm512_set1_ps(-3.4e38f), m1 = m0, m2 = m0, m3 = m0;
  int j = 0;
  for (; j + 64 <= full; j += 64) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(p + j));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(p + j + 16));
    m2 = _mm512_max_ps(m2, _mm512_loadu_ps(p + j + 32));
    m3 = _mm512_max_ps(m3, _mm512_loadu_ps(p + j + 48));
  }
  for (; j < full; j += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(p + j));
  if (full < L) m1 = _mm512_max_ps(m1, _mm512_mask_loadu_ps(m1, tail(L - full), p + full));
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
  const __m512 u8_scale = _mm512_set1_ps(255.0f);
  const __m512i u8_max = _mm512_set1_epi32(255);
  // kSoftmaxSets independent chains: each exp is a dependent polynomial, one running sum would serialize them.
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  auto step = [&](int at, __m512& sum, __mmask16 m) {
    const __m512 e = _mm512_maskz_mov_ps(m, exp2_16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + at), max)));
    sum = _mm512_add_ps(sum, e);
    const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(e, u8_scale)), u8_max);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(pq + at), _mm512_cvtepi32_epi8(q));
  };
  j = 0;
  for (; j + 64 <= full; j += 64) {
    step(j, s0, 0xffff);
    step(j + 16, s1, 0xffff);
    step(j + 32, s2, 0xffff);
    step(j + 48, s3, 0xffff);
  }
  for (; j < L; j += 16) {
    __m512& sum = (j / 16) % 4 == 0 ? s0 : (j / 16) % 4 == 1 ? s1 : (j / 16) % 4 == 2 ? s2 : s3;
    step(j, sum, tail(L - j));  // lanes past L quantize to 0
  }
  for (; j < a.Lp; j += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(pq + j), _mm_setzero_si128());
  alignas(64) float sets[kSoftmaxSets][16];
  _mm512_store_ps(sets[0], s0);
  _mm512_store_ps(sets[1], s1);
  _mm512_store_ps(sets[2], s2);
  _mm512_store_ps(sets[3], s3);
  return (1.0f / 255.0f) * (1.0f / sum_softmax_partials(sets));
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
    for (int s = 0; s < S; ++s) {
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(out_scale[qi]), _mm512_loadu_ps(a.vscale + d0 + 16 * s));
      _mm512_storeu_ps(ctx + size_t(qi) * ldc + d0 + 16 * s, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[qi][s]), scale));
    }
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
  const float softmax_scale = kLog2e / std::sqrt(float(head_dim));
  int i = 0;
  for (; i + 4 <= L; i += 4)
    query_block<4>(q + size_t(i) * ld, ld, a, softmax_scale, ctx + size_t(i) * ldc, ldc);
  for (; i < L; ++i) query_block<1>(q + size_t(i) * ld, ld, a, softmax_scale, ctx + size_t(i) * ldc, ldc);
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
