// Output-block sparse tile GEMM, 16-channel group x Mt tokens, AVX-VNNI (one VEX VPDPBUSD per 8 tokens x 4 inputs): the shared ymm walk
// of qu8s8-spmm-ob4-ymm.h.
#include <immintrin.h>

#include "kernels-internal.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avxvnni,avx2")

#include "qu8s8-spmm-ob4-ymm.h"
#include "vnni-dot-ymm.h"

namespace sbs::kernels {

void qu8s8_spmm_ob4_avxvnni(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc, int32_t* acc) {
  ymm::out_block_gemm<VnniDot>(planar, Mt, w, n0, nc, acc);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
