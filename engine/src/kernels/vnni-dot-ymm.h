// Private: the AVX-VNNI product of the ymm tile kernels (qu8s8-tile-ymm.h): one VEX VPDPBUSD per 8 tokens x 4 k.
// Include after `#pragma GCC target("avxvnni,avx2")`.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "vnni-asm.h"

namespace sbs::kernels {
namespace {

struct VnniDot {
  using Act = __m256i;
  using Weight = __m256i;
  static Act act(__m256i v) { return v; }
  static Weight weight(int32_t quad) { return _mm256_set1_epi32(quad); }
  static __m256i mac(__m256i acc, Act a, Weight w) { return dpbusd256_vex(acc, a, w); }
};

}  // namespace
}  // namespace sbs::kernels
