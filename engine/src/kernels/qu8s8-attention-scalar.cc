// Portable int8 attention for one head of one row (the definition the AVX512-VNNI kernel matches bit-exactly; see
// qu8s8-attention.h for the scheme).
#include <cstring>

#include "qu8s8-attention.h"

namespace sbs::kernels {

namespace {

// s8 quads of one token's head slice x[0..head_dim) at stride `lane_stride` between tokens; returns the scale.
float quantize_symmetric(const float* x, int head_dim, int8_t* out, int32_t* sum) {
  float amax = 0.0f;
  for (int d = 0; d < head_dim; ++d) amax = std::max(amax, std::fabs(x[d]));
  const float scale = symmetric_scale(amax), inv = 1.0f / scale;
  int32_t s = 0;
  for (int d = 0; d < head_dim; ++d) {
    out[d] = int8_t(std::min(127, std::max(-127, cvt_nearest_i32(x[d] * inv))));
    s += out[d];
  }
  if (sum) *sum = s;
  return scale;
}

}  // namespace

void qu8s8_attention_head_scalar(const float* q, const float* k, const float* v, int ld, int L, int head_dim,
                                 float* ctx, int ldc, void* scratch) {
  const AttentionLayout a = attention_layout(scratch, L, head_dim);
  const size_t Lp = size_t(a.Lp), hd = size_t(head_dim);
  std::memset(a.kq, 0, Lp * hd);
  std::memset(a.vq, 0, Lp * hd);
  int8_t row[kMaxInt8AttentionHeadDim];
  float vinv[kMaxInt8AttentionHeadDim];
  for (int d = 0; d < head_dim; ++d) {
    float amax = 0.0f;
    for (int j = 0; j < L; ++j) amax = std::max(amax, std::fabs(v[size_t(j) * ld + d]));
    a.vscale[d] = symmetric_scale(amax);
    vinv[d] = 1.0f / a.vscale[d];
  }
  for (int j = 0; j < L; ++j) {
    a.kscale[j] = quantize_symmetric(k + size_t(j) * ld, head_dim, row, &a.ksum[j]);
    for (int d = 0; d < head_dim; ++d) a.kq[(size_t(d / 4) * Lp + j) * 4 + d % 4] = row[d];
    for (int d = 0; d < head_dim; ++d)
      a.vq[(size_t(j / 4) * hd + d) * 4 + j % 4] =
          int8_t(std::min(127, std::max(-127, cvt_nearest_i32(v[size_t(j) * ld + d] * vinv[d]))));
  }
  const float softmax_scale = kLog2e / std::sqrt(float(head_dim));
  for (int i = 0; i < L; ++i) {
    const float* qi = q + size_t(i) * ld;
    float lo = 0.0f, hi = 0.0f;
    for (int d = 0; d < head_dim; ++d) lo = std::min(lo, qi[d]), hi = std::max(hi, qi[d]);
    const QuantParams qp = quant_params(lo, hi);
    for (int d = 0; d < head_dim; ++d)
      a.qq[d] = uint8_t(std::min(255, std::max(0, cvt_nearest_i32(qi[d] * qp.inv_scale) + qp.zero)));
    const float qscale = qp.scale * softmax_scale;
    float* scores = a.probs;
    float max = -3.4e38f;
    for (int j = 0; j < L; ++j) {
      int32_t s = 0;
      for (int d = 0; d < head_dim; ++d) s += int32_t(a.qq[d]) * a.kq[(size_t(d / 4) * Lp + j) * 4 + d % 4];
      s -= qp.zero * a.ksum[j];
      scores[j] = float(s) * (qscale * a.kscale[j]);
      max = std::max(max, scores[j]);
    }
    float sets[kSoftmaxSets][16] = {};
    for (int j = 0; j < a.Lp; ++j) {
      if (j >= L) {
        a.pq[j] = 0;
        continue;
      }
      const float e = attention_exp2(scores[j] - max);
      sets[(j / 16) % kSoftmaxSets][j % 16] += e;
      a.pq[j] = uint8_t(std::min(255, cvt_nearest_i32(e * 255.0f)));
    }
    const float pscale = (1.0f / 255.0f) * (1.0f / sum_softmax_partials(sets));
    for (int d = 0; d < head_dim; ++d) {
      int32_t s = 0;
      for (int j = 0; j < L; ++j) s += int32_t(a.pq[j]) * a.vq[(size_t(j / 4) * hd + d) * 4 + j % 4];
      ctx[size_t(i) * ldc + d] = float(s) * (pscale * a.vscale[d]);
    }
  }
}

}  // namespace sbs::kernels
