// Dense tile GEMM, 16-channel group x Mt tokens, AVX-VNNI (VEX ymm VPDPBUSD): 8 tokens per ymm, weights
// broadcast, as the AVX512-VNNI kernel but with 16 registers: micro-kernels of 2 token vectors x 4 channels over
// K blocks that stay in L1 (qu8s8-tile-ymm.h), accumulators parked in `acc` between blocks.
#include <immintrin.h>

#include "kernels-internal.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avxvnni,avx2")

#include "qu8s8-tile-ymm.h"
#include "vnni-dot-ymm.h"

namespace sbs::kernels {

void qu8s8_gemm_dense_avxvnni(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc,
                              int32_t* acc) {
  ymm::dense_gemm<VnniDot, 4>(tile, Mt, w, n0, nc, acc);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
