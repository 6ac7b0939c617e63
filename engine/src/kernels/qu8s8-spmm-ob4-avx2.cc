// Output-block sparse tile GEMM, 16-channel group x Mt tokens, AVX2 without VNNI (exact int16-widened products, widened-dot-ymm.h): the shared ymm walk
// of qu8s8-spmm-ob4-ymm.h.
#include <immintrin.h>

#include "kernels-internal.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "qu8s8-spmm-ob4-ymm.h"
#include "widened-dot-ymm.h"

namespace sbs::kernels {

void qu8s8_spmm_ob4_avx2(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc, int32_t* acc) {
  ymm::out_block_gemm<WidenedDot>(planar, Mt, w, n0, nc, acc);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
