// Dense tile GEMM, 16-channel group x Mt tokens, AVX-VNNI (VEX ymm VPDPBUSD): 8 tokens per ymm, weights
// broadcast, as the AVX512-VNNI kernel but with 16 registers: micro-kernels of 2 token vectors x 4 channels over
// K blocks that stay in L1, accumulators parked in `acc` between blocks.
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"
#include "transpose-avx2.h"
#include "vnni-asm.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avxvnni,avx2")

namespace sbs::kernels {

namespace {

constexpr int kTb = 2;  // token vectors per micro-kernel (16 tokens: every Mt is a multiple)

template <int NC>
inline void dense_block(const uint8_t* a, size_t row, const int32_t* w, size_t Kq, int nk, int32_t* park,
                        bool first) {
  __m256i acc[NC][kTb];
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c)
#pragma GCC unroll 2
    for (int t = 0; t < kTb; ++t)
      acc[c][t] = first ? _mm256_setzero_si256()
                        : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(park + t * 128 + c * 8));
  for (int k = 0; k < nk; ++k) {
    __m256i av[kTb];
#pragma GCC unroll 2
    for (int t = 0; t < kTb; ++t) av[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k * row + t * 32));
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      const __m256i wb = _mm256_set1_epi32(w[c * Kq + k]);
#pragma GCC unroll 2
      for (int t = 0; t < kTb; ++t) acc[c][t] = dpbusd256_vex(acc[c][t], av[t], wb);
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c)
#pragma GCC unroll 2
    for (int t = 0; t < kTb; ++t) _mm256_storeu_si256(reinterpret_cast<__m256i*>(park + t * 128 + c * 8), acc[c][t]);
}

}  // namespace

void qu8s8_gemm_dense_avxvnni(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc,
                              int32_t* acc) {
  constexpr int NC = 4;
  const size_t Kq = size_t(w.Kq), row = size_t(Mt) * 4;
  const int kb = quads_per_block(Mt, kDenseTileBlockBytes);
  for (int k0 = 0; k0 < w.Kq; k0 += kb) {
    const int nk = std::min(kb, w.Kq - k0);
    const bool first = k0 == 0;
    const int32_t* wq = w.quads + size_t(n0) * Kq + k0;
    for (int t0 = 0; t0 < Mt; t0 += 8 * kTb) {
      const uint8_t* a = tile + size_t(k0) * row + t0 * 4;
      int32_t* park = acc + (t0 / 8) * 128;
      int c = 0;
      for (; c + NC <= nc; c += NC) dense_block<NC>(a, row, wq + c * Kq, Kq, nk, park + c * 8, first);
      for (; c < nc; ++c) dense_block<1>(a, row, wq + c * Kq, Kq, nk, park + c * 8, first);
    }
  }
  for (int c = nc; c < 16; ++c)
    for (int t = 0; t < Mt / 8; ++t) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + t * 128 + c * 8), _mm256_setzero_si256());
  transpose_acc_blocks_avx2(acc, Mt / 8);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
