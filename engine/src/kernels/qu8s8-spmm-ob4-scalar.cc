// Portable output-block sparse tile GEMM: for each block of 4 channels, each tuple of 4 inputs multiplies the
// 4 activation bytes of every token with the tuple's 4 weights of each channel. The definition the vector
// kernels must match bit-exactly (int32 sums are exact in any order).
#include <cstring>

#include "kernels-internal.h"

namespace sbs::kernels {

void qu8s8_spmm_ob4_scalar(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc,
                           int32_t* acc) {
  const size_t chunk_bytes = size_t(w.Kq) * 4 * kPlanarChunk;
  for (int c0 = 0; c0 < nc; c0 += kOutBlock) {
    const int b = (n0 + c0) / kOutBlock;
    int32_t sums[kOutBlock][kMaxTileRows];
    std::memset(sums, 0, sizeof sums);
    for (uint32_t t = w.block_begin[b]; t < w.block_begin[b + 1]; ++t) {
      const uint16_t* k = w.k + size_t(t) * 4;
      for (int c = 0; c < kOutBlock; ++c) {
        uint32_t u;
        std::memcpy(&u, &w.w[size_t(t) * 4 + c], 4);
        const int32_t w0 = int8_t(u), w1 = int8_t(u >> 8), w2 = int8_t(u >> 16), w3 = int8_t(u >> 24);
        for (int m = 0; m < Mt; ++m) {
          const uint8_t* chunk = planar + size_t(m / kPlanarChunk) * chunk_bytes;
          const int pos = planar_position(m) % kPlanarChunk;
          sums[c][m] += chunk[size_t(k[0]) * kPlanarChunk + pos] * w0 + chunk[size_t(k[1]) * kPlanarChunk + pos] * w1 +
                        chunk[size_t(k[2]) * kPlanarChunk + pos] * w2 + chunk[size_t(k[3]) * kPlanarChunk + pos] * w3;
        }
      }
    }
    for (int c = 0; c < kOutBlock && c0 + c < nc; ++c)
      for (int m = 0; m < Mt; ++m) acc[m * kChannelGroup + c0 + c] = sums[c][m];
  }
}

}  // namespace sbs::kernels
