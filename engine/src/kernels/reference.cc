#include "reference.h"

#include <cstring>

namespace sbs {

void qu8s8_gemm_reference(const uint8_t* A, int M, int K, const int8_t* W_kn, int N, int32_t* C) {
  std::memset(C, 0, sizeof(int32_t) * size_t(M) * N);
  for (int m = 0; m < M; ++m) {
    int32_t* c = C + size_t(m) * N;
    for (int k = 0; k < K; ++k) {
      const int32_t a = A[size_t(m) * K + k];
      const int8_t* w = W_kn + size_t(k) * N;
      for (int n = 0; n < N; ++n) c[n] += a * w[n];
    }
  }
}

size_t tile_bytes(int K, int Mt) { return size_t((K + 3) / 4) * Mt * 4; }

void pack_tile(const uint8_t* A, int K, int m0, int rows, int Mt, uint8_t* tile) {
  std::memset(tile, 0, tile_bytes(K, Mt));
  for (int m = 0; m < rows; ++m)
    for (int k = 0; k < K; ++k) tile[(size_t(k / 4) * Mt + m) * 4 + k % 4] = A[size_t(m0 + m) * K + k];
}

}  // namespace sbs
