// Portable planar tile of the output-block kernels (kernels.h) from a packed tile: the definition of the layout.
#include <cstring>

#include "kernels-internal.h"

namespace sbs::kernels {

void u8_planarize_tile_scalar(const uint8_t* tile, int Mt, int Kq, uint8_t* planar) {
  const int chunks = (Mt + kPlanarChunk - 1) / kPlanarChunk;
  const size_t chunk_bytes = size_t(Kq) * 4 * kPlanarChunk;
  std::memset(planar, 0, size_t(chunks) * chunk_bytes);
  for (int kq = 0; kq < Kq; ++kq)
    for (int m = 0; m < Mt; ++m)
      for (int j = 0; j < 4; ++j)
        planar[size_t(m / kPlanarChunk) * chunk_bytes + size_t(4 * kq + j) * kPlanarChunk + planar_position(m) % 64] =
            tile[(size_t(kq) * Mt + m) * 4 + j];
}

}  // namespace sbs::kernels
