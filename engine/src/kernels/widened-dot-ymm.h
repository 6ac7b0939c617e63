// Private: the AVX2 product (no VNNI) of the ymm tile kernels (qu8s8-tile-ymm.h). VPMADDUBSW would saturate
// (255 * -128 * 2 does not fit int16), so u8 and s8 bytes are widened to int16 pairs and multiplied exactly with
// VPMADDWD: even bytes (k = 4kq, 4kq+2) in one register, odd bytes in another, two VPMADDWD per 8 tokens x 4 k.
// Include after `#pragma GCC target("avx2,fma")`.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace sbs::kernels {
namespace {

struct WidenedDot {
  struct Act {
    __m256i even, odd;
  };
  struct Weight {
    __m256i even, odd;
  };
  static Act act(__m256i v) {
    return {_mm256_and_si256(v, _mm256_set1_epi16(0x00ff)), _mm256_srli_epi16(v, 8)};
  }
  static Weight weight(int32_t quad) {
    const __m256i wb = _mm256_set1_epi32(quad);
    return {_mm256_srai_epi16(_mm256_slli_epi16(wb, 8), 8), _mm256_srai_epi16(wb, 8)};
  }
  static __m256i mac(__m256i acc, Act a, Weight w) {
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(a.even, w.even), _mm256_madd_epi16(a.odd, w.odd)));
  }
};

}  // namespace
}  // namespace sbs::kernels
