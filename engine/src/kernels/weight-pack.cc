// Packing of one linear layer's s8 weights from the ONNX MatMul layout W[K][N] into the kernels' quads.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels-internal.h"

namespace sbs {

namespace {

// The 4 weights W[4kq..4kq+3][n] as one dword, byte j = k offset j (the byte order VPDPBUSD pairs with the tile).
inline int32_t load_quad(const int8_t* w_kn, int K, int N, int n, int kq) {
  uint32_t q = 0;
  for (int j = 0; j < 4; ++j) {
    const int k = 4 * kq + j;
    if (k < K) q |= uint32_t(uint8_t(w_kn[size_t(k) * N + n])) << (8 * j);
  }
  int32_t r;
  std::memcpy(&r, &q, 4);
  return r;
}

}  // namespace

double quad_density(const int8_t* w_kn, int K, int N) {
  const int Kq = (K + 3) / 4;
  if (N <= 0 || Kq <= 0) return 0.0;
  size_t nonzero = 0;
  for (int n = 0; n < N; ++n)
    for (int kq = 0; kq < Kq; ++kq) nonzero += load_quad(w_kn, K, N, n, kq) != 0;
  return double(nonzero) / (double(N) * Kq);
}

PackedLinear pack_linear(const int8_t* w_kn, int K, int N, bool sparse) {
  PackedLinear p;
  p.K = K;
  p.N = N;
  p.Kq = (K + 3) / 4;
  p.sparse = sparse;
  p.w_sum.assign(size_t(N), 0);
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) p.w_sum[n] += w_kn[size_t(k) * N + n];
  size_t nonzero = 0;
  if (sparse) {
    if (K > kMaxSparseK)
      throw std::invalid_argument("pack_linear: K = " + std::to_string(K) + " is too large for the sparse layout " +
                                  "(uint16 quad indices: K <= " + std::to_string(kMaxSparseK) + ")");
    p.row_begin.reserve(size_t(N) + 1);
    p.row_begin.push_back(0);
    for (int n = 0; n < N; ++n) {
      for (int kq = 0; kq < p.Kq; ++kq) {
        const int32_t q = load_quad(w_kn, K, N, n, kq);
        if (q == 0) continue;
        p.kq.push_back(uint16_t(kq));
        p.quads.push_back(q);
      }
      p.row_begin.push_back(uint32_t(p.kq.size()));
    }
    nonzero = p.kq.size();
  } else {
    p.dense.resize(size_t(N) * p.Kq);
    for (int n = 0; n < N; ++n)
      for (int kq = 0; kq < p.Kq; ++kq) {
        const int32_t q = load_quad(w_kn, K, N, n, kq);
        p.dense[size_t(n) * p.Kq + kq] = q;
        nonzero += q != 0;
      }
  }
  p.quad_density = (N > 0 && p.Kq > 0) ? double(nonzero) / (double(N) * p.Kq) : 0.0;
  return p;
}

std::vector<int> split_channels(const PackedLinear& w, int parts) {
  parts = std::max(1, parts);
  const int N = w.N;
  const int groups = (N + kChannelGroup - 1) / kChannelGroup;
  // Each channel also costs its epilogue and its share of the accumulator transposes, whatever its sparsity;
  // without this an all-zero stretch of channels would look free and pile onto one thread.
  const size_t per_channel = 8;
  std::vector<size_t> prefix(size_t(groups) + 1, 0);
  for (int g = 0; g < groups; ++g) {
    size_t work = 0;
    for (int n = g * kChannelGroup; n < std::min(N, (g + 1) * kChannelGroup); ++n) work += w.channel_work(n) + per_channel;
    prefix[g + 1] = prefix[g] + work;
  }
  const size_t total = prefix[groups];
  std::vector<int> bounds(size_t(parts) + 1);
  bounds[0] = 0;
  int g = 0;
  for (int i = 1; i < parts; ++i) {
    // The group boundary nearest to the i-th share of the work, never before the previous bound.
    const double target = double(total) * i / parts;
    while (g < groups && double(prefix[g + 1]) <= target) ++g;
    if (g < groups && double(prefix[g + 1]) - target < target - double(prefix[g])) ++g;
    bounds[i] = std::min(N, g * kChannelGroup);
  }
  bounds[parts] = N;
  return bounds;
}

}  // namespace sbs
