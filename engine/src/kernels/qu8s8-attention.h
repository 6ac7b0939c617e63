// Private: what the int8 attention kernels (scalar reference and AVX512-VNNI) share, so that both compute the same
// bits: the scratch layout, the quantizers and the exp polynomial, each written once in scalar form; the vector
// kernel performs the same float operations in the same order lane by lane.
//
// One head of one row of L tokens: keys quantized per token to s8 (symmetric), queries per token to u8
// (asymmetric, as the GEMM activations), scores = dequantized int32 dot products; softmax in fp32 with the
// unnormalized probabilities (largest exactly 1) quantized to u8 at the fixed scale 1/255 in the same pass; values
// quantized to s8 per dimension (symmetric, over the row's tokens), so the context is one int32 dot product per
// dimension, dequantized once by that dimension's scale / (255 x the softmax sum). Every scale belongs to one
// token, one query or one dimension of one row: a row's result never depends on the other rows of the batch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"

namespace sbs::kernels {

struct AttentionLayout {
  int L, Lp, head_dim;  // Lp: L rounded up to 16
  int8_t* kq;           // [head_dim / 4][Lp][4]: key quads, keys as lanes
  int8_t* vq;           // [Lp / 4][head_dim][4]: value quads of 4 consecutive keys, dimensions as lanes
  int32_t* ksum;        // [Lp] sum of each key's s8 values
  float* kscale;        // [Lp]
  float* vscale;        // [head_dim]: per dimension
  float* probs;         // [4][Lp]
  uint8_t* pq;          // [4][Lp]
  uint8_t* qq;          // [4][head_dim]
};

inline AttentionLayout attention_layout(void* scratch, int L, int head_dim) {
  auto align = [](uint8_t* p) { return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63)); };
  AttentionLayout a;
  a.L = L;
  a.Lp = (L + 15) / 16 * 16;
  a.head_dim = head_dim;
  uint8_t* p = align(static_cast<uint8_t*>(scratch));
  const size_t Lp = size_t(a.Lp);
  a.kq = reinterpret_cast<int8_t*>(p), p = align(p + Lp * head_dim);
  a.vq = reinterpret_cast<int8_t*>(p), p = align(p + Lp * head_dim);
  a.ksum = reinterpret_cast<int32_t*>(p), p = align(p + Lp * 4);
  a.kscale = reinterpret_cast<float*>(p), p = align(p + Lp * 4);
  a.vscale = reinterpret_cast<float*>(p), p = align(p + size_t(head_dim) * 4);
  a.probs = reinterpret_cast<float*>(p), p = align(p + 4 * Lp * 4);
  a.pq = p, p = align(p + 4 * Lp);
  a.qq = p;
  return a;
}

// Symmetric s8 scale of a token whose largest magnitude is amax: values map to [-127, 127].
inline float symmetric_scale(float amax) { return amax > 0 ? amax / 127.0f : 1.0f; }

// Scores are kept in base-2 units (the softmax scale 1/sqrt(head_dim) times log2(e) is folded into each query's
// scale), so the softmax needs 2^x for x <= 0: clamp, 2^n 2^f with |f| <= 1/2, degree-4 Taylor polynomial, scale.
// Worst-case relative error 5e-5 (the probabilities are then quantized to 1/255 of their largest).
constexpr float kLog2e = 1.44269504f;
inline float attention_exp2(float x) {
  x = std::max(x, -126.0f);
  const float n = std::nearbyint(x);
  const float f = x - n;
  float p = 0.00961813f;
  p = std::fma(p, f, 0.0555041f);
  p = std::fma(p, f, 0.240226507f);
  p = std::fma(p, f, 0.693147182f);
  p = std::fma(p, f, 1.0f);
  return std::ldexp(p, int(n));
}

// The softmax denominator's fixed summation order: value j goes to partial sum [(j / 16) % 4][j % 16] (4
// independent 16-lane accumulators, so the vector kernel's exps overlap); the 4 sets are added as (0 + 1) + (2 + 3)
// lane by lane, then the 16 lanes in order. The vector kernel stores its lanes and adds them the same way.
constexpr int kSoftmaxSets = 4;
inline float sum_softmax_partials(const float (*sets)[16]) {
  float s = 0.0f;
  for (int l = 0; l < 16; ++l) s += (sets[0][l] + sets[1][l]) + (sets[2][l] + sets[3][l]);
  return s;
}

}  // namespace sbs::kernels
