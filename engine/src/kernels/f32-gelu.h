// Private: the GELU of the f32-gelu kernels, written once in scalar form (the vector kernels repeat its operations
// lane by lane in the same order, so every path gives the same bits).
//
// gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) with erf(a) = 1 - (1 + a1 a + ... + a6 a^6)^-16 for a >= 0
// (Abramowitz & Stegun 7.1.28, |error| <= 3e-7): no exp, one division, four squarings. For x >= 0 that is
// x - h, for x < 0 it is h, with h = 0.5 x r^16, r = 1 / (1 + P(|x| / sqrt 2)). Worst-case |error| against the
// exact erf GELU over x in [-12, 12]: 4.2e-7 x max(1, |x|) (the kernel tester checks it on 2^20 points).
#pragma once

#include <cmath>

namespace sbs::kernels {

constexpr float kGeluA1 = 0.0705230784f, kGeluA2 = 0.0422820123f, kGeluA3 = 0.0092705272f,
                kGeluA4 = 0.0001520143f, kGeluA5 = 0.0002765672f, kGeluA6 = 0.0000430638f;

// Inputs are clamped to [-20, 20] for h: beyond, r^16 underflows to 0 and gelu(x) is x or 0 (this also keeps
// infinities from making inf * 0). Written as MAXPS / MINPS compute them, so the vector kernels match.
constexpr float kGeluClamp = 20.0f;

inline float gelu_scalar(float x) {
  float c = x > -kGeluClamp ? x : -kGeluClamp;
  c = c < kGeluClamp ? c : kGeluClamp;
  const float a = std::fabs(c * 0.70710678f);
  float p = kGeluA6;
  p = std::fma(p, a, kGeluA5);
  p = std::fma(p, a, kGeluA4);
  p = std::fma(p, a, kGeluA3);
  p = std::fma(p, a, kGeluA2);
  p = std::fma(p, a, kGeluA1);
  const float d = std::fma(p, a, 1.0f);
  float r = 1.0f / d;
  r = r * r;
  r = r * r;
  r = r * r;
  r = r * r;
  const float h = (c * 0.5f) * r;
  return x >= 0.0f ? x - h : h;
}

}  // namespace sbs::kernels
