// Sparse tile GEMM, 16-channel group x Mt tokens, AVX-VNNI: as the AVX512-VNNI one with 8 tokens per ymm. The
// tile is walked in 32-token chunks (4 ymm) so that 2 accumulator sets (8 chains) fit the 16 registers; each
// channel's list is walked once per chunk (qu8s8-tile-ymm.h).
#include <immintrin.h>

#include "kernels-internal.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
#pragma GCC target("avxvnni,avx2")

#include "qu8s8-tile-ymm.h"
#include "vnni-dot-ymm.h"

namespace sbs::kernels {

void qu8s8_spmm_avxvnni(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
  ymm::sparse_gemm<VnniDot, 2>(tile, Mt, w, n0, nc, acc);
}

}  // namespace sbs::kernels

#pragma GCC pop_options
#endif
