// Portable dense tile GEMM: the fallback on CPUs without AVX2 and the definition the vector kernels must match.
#include <cstring>

#include "kernels-internal.h"

namespace sbs::kernels {

void qu8s8_gemm_dense_scalar(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc) {
  int32_t sums[kMaxTileRows];
  for (int c = 0; c < nc; ++c) {
    const int32_t* wq = w.quads + size_t(n0 + c) * w.Kq;
    std::memset(sums, 0, sizeof(int32_t) * Mt);
    for (int kq = 0; kq < w.Kq; ++kq)
      if (wq[kq] != 0) scalar_mac_quad(tile + size_t(kq) * Mt * 4, Mt, wq[kq], sums);
    for (int m = 0; m < Mt; ++m) acc[m * kChannelGroup + c] = sums[m];
  }
}

}  // namespace sbs::kernels
