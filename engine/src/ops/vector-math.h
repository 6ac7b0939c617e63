// Branch-free float math written so GCC vectorizes it (plain loops, no libm calls), and reductions with 16 fixed
// partial sums so a result does not depend on the vector width the compiler picked: every ISA clone of an op
// computes the same bits, and a token's result never depends on its neighbours.
#pragma once

#include <cstdint>
#include <cstring>

// Each op is compiled three times and picked by the CPU at load (GCC function multi-versioning via ifunc):
// AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3), and baseline x86-64. Nothing is compiled with -march.
#if defined(__x86_64__) && !defined(SBS_NO_CLONES) && !defined(__SANITIZE_ADDRESS__)
#define SBS_OP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SBS_OP_CLONES
#endif

namespace sbs {

constexpr int kLanes = 16;

inline float bits_to_float(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// e^x for x <= 0 (softmax after max subtraction), relative error ~2e-7; below -87 returns ~0 (no denormals).
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  float n = __builtin_floorf(x * 1.44269504f + 0.5f);
  float r = x - n * 0.693145752f;
  r = r - n * 1.42860677e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * bits_to_float((int32_t(n) + 127) << 23);
}

inline float combine_lanes(const float* lanes) {
  // A fixed pairwise tree.
  float s8[8], s4[4];
  for (int i = 0; i < 8; i++) s8[i] = lanes[i] + lanes[i + 8];
  for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

inline float sum_lanes(const float* x, int n) {
  float lanes[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) lanes[l] += x[i + l];
  for (int l = 0; i + l < n; l++) lanes[l] += x[i + l];
  return combine_lanes(lanes);
}

inline float max_lanes(const float* x, int n) {
  float lanes[kLanes];
  for (int l = 0; l < kLanes; l++) lanes[l] = -3.4e38f;
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) lanes[l] = lanes[l] > x[i + l] ? lanes[l] : x[i + l];
  for (int l = 0; i + l < n; l++) lanes[l] = lanes[l] > x[i + l] ? lanes[l] : x[i + l];
  float m = lanes[0];
  for (int l = 1; l < kLanes; l++) m = m > lanes[l] ? m : lanes[l];
  return m;
}

inline float dot_lanes(const float* a, const float* b, int n) {
  float lanes[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) lanes[l] += a[i + l] * b[i + l];
  for (int l = 0; i + l < n; l++) lanes[l] += a[i + l] * b[i + l];
  return combine_lanes(lanes);
}

}  // namespace sbs
