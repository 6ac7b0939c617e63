// Portable sparse tile GEMM over the CSR quads of each channel.
#include <cstring>

#include "kernels-internal.h"

namespace sbs::kernels {

void qu8s8_spmm_scalar(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
  int32_t sums[kMaxTileRows];
  for (int c = 0; c < nc; ++c) {
    std::memset(sums, 0, sizeof(int32_t) * Mt);
    for (uint32_t e = w.row_begin[n0 + c]; e < w.row_begin[n0 + c + 1]; ++e)
      scalar_mac_quad(tile + size_t(w.kq[e]) * Mt * 4, Mt, w.quads[e], sums);
    for (int m = 0; m < Mt; ++m) acc[m * kChannelGroup + c] = sums[m];
  }
}

}  // namespace sbs::kernels
