// Dense tile GEMM, 16-channel group x Mt tokens, AVX2 without VNNI: the ymm micro-kernels (qu8s8-tile-ymm.h) with
// the exact int16-widening product (widened-dot-ymm.h); 2 channels per micro-kernel, the widened operands take
// twice the registers of the VNNI ones.
#include <immintrin.h>

#include "kernels-internal.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "qu8s8-tile-ymm.h"
#include "widened-dot-ymm.h"

namespace sbs::kernels {

void qu8s8_gemm_dense_avx2(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc) {
  ymm::dense_gemm<WidenedDot, 2>(tile, Mt, w, n0, nc, acc);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
