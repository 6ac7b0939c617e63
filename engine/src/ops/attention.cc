#include "ops.h"
#include "vector-math.h"

namespace sbs {
namespace {

constexpr int kQueries = 4;  // queries per block: each key / value vector loaded once serves four queries

// scores[qi][j] = scale * dot(q_qi, k_j) for j < Lp, from the transposed keys kt[d][Lp].
template <int Q>
inline void block_scores(const float* q, int ld, const float* kt, int Lp, int head_dim, float scale, float* scores) {
  for (int j = 0; j < Lp; j += kLanes) {
    float acc[Q][kLanes] = {};
    for (int d = 0; d < head_dim; d++) {
      const float* krow = kt + size_t(d) * Lp + j;
      for (int qi = 0; qi < Q; qi++) {
        float qd = q[size_t(qi) * ld + d];
        for (int l = 0; l < kLanes; l++) acc[qi][l] += qd * krow[l];
      }
    }
    for (int qi = 0; qi < Q; qi++)
      for (int l = 0; l < kLanes; l++) scores[size_t(qi) * Lp + j + l] = acc[qi][l] * scale;
  }
}

inline void softmax(float* p, int L) {
  float max = max_lanes(p, L);
  for (int j = 0; j < L; j++) p[j] = exp_nonpositive(p[j] - max);
  float inv = 1.0f / sum_lanes(p, L);
  for (int j = 0; j < L; j++) p[j] *= inv;
}

// ctx[qi][d0 + l] = sum_j p[qi][j] * v_j[d0 + l] for l < width <= 16 (summed in order of j).
template <int Q>
inline void context_slice(const float* p, int Lp, const float* v, int ld, int L, int d0, int width, float* ctx,
                          int ldc) {
  float acc[Q][kLanes] = {};
  for (int j = 0; j < L; j++) {
    const float* vrow = v + size_t(j) * ld + d0;
    for (int qi = 0; qi < Q; qi++) {
      float pj = p[size_t(qi) * Lp + j];
      for (int l = 0; l < width; l++) acc[qi][l] += pj * vrow[l];
    }
  }
  for (int qi = 0; qi < Q; qi++)
    for (int l = 0; l < width; l++) ctx[size_t(qi) * ldc + d0 + l] = acc[qi][l];
}

// The head's context 16 dimensions at a time (a constant width the compiler vectorizes), then the rest.
template <int Q>
inline void block_context(const float* p, int Lp, const float* v, int ld, int L, int head_dim, float* ctx, int ldc) {
  int d0 = 0;
  for (; d0 + kLanes <= head_dim; d0 += kLanes) context_slice<Q>(p, Lp, v, ld, L, d0, kLanes, ctx, ldc);
  if (d0 < head_dim) context_slice<Q>(p, Lp, v, ld, L, d0, head_dim - d0, ctx, ldc);
}

}  // namespace

SBS_OP_CLONES
void attention_head(const float* q, const float* k, const float* v, int ld, int L, int head_dim, float* ctx, int ldc,
                    float* scratch) {
  const int Lp = (L + kLanes - 1) / kLanes * kLanes;
  float* kt = scratch;                       // [head_dim][Lp], zero past L
  float* probs = scratch + size_t(head_dim) * Lp;  // [kQueries][Lp]
  for (int d = 0; d < head_dim; d++) {
    float* row = kt + size_t(d) * Lp;
    for (int j = 0; j < L; j++) row[j] = k[size_t(j) * ld + d];
    for (int j = L; j < Lp; j++) row[j] = 0.0f;
  }
  const float scale = 1.0f / __builtin_sqrtf(float(head_dim));
  int i = 0;
  for (; i + kQueries <= L; i += kQueries) {
    block_scores<kQueries>(q + size_t(i) * ld, ld, kt, Lp, head_dim, scale, probs);
    for (int qi = 0; qi < kQueries; qi++) softmax(probs + size_t(qi) * Lp, L);
    block_context<kQueries>(probs, Lp, v, ld, L, head_dim, ctx + size_t(i) * ldc, ldc);
  }
  for (; i < L; i++) {
    block_scores<1>(q + size_t(i) * ld, ld, kt, Lp, head_dim, scale, probs);
    softmax(probs, L);
    block_context<1>(probs, Lp, v, ld, L, head_dim, ctx + size_t(i) * ldc, ldc);
  }
}

}  // namespace sbs
