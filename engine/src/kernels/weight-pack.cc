// Packing of one linear layer's s8 weights from the ONNX MatMul layout W[K][N] into the kernels' quads.
#include <algorithm>
#include <cmath>
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

double quad_density(const int8_t* w_kn, int K, int N) { return measure_densities(w_kn, K, N).quads; }

const char* linear_kernel_name(LinearKernel kernel) {
  switch (kernel) {
    case LinearKernel::dense: return "dense";
    case LinearKernel::sparse_quads: return "sparse-quads";
    case LinearKernel::out_blocks: return "sparse-out-blocks";
  }
  return "?";
}

WeightDensities measure_densities(const int8_t* w_kn, int K, int N) {
  WeightDensities d{0, 0, 0};
  const int Kq = (K + 3) / 4, blocks = (N + kOutBlock - 1) / kOutBlock;
  if (N <= 0 || K <= 0) return d;
  size_t weights = 0, quads = 0, out_blocks = 0;
  std::vector<uint8_t> quad_nonzero(static_cast<size_t>(N));
  for (int k = 0; k < K; ++k) {
    const int8_t* row = w_kn + size_t(k) * N;
    if (k % 4 == 0) std::fill(quad_nonzero.begin(), quad_nonzero.end(), 0);
    for (int n = 0; n < N; ++n) {
      weights += row[n] != 0;
      quad_nonzero[n] |= row[n] != 0;
    }
    for (int b = 0; b < blocks; ++b) {
      bool any = false;
      for (int n = b * kOutBlock; n < std::min(N, (b + 1) * kOutBlock); ++n) any |= row[n] != 0;
      out_blocks += any;
    }
    if (k % 4 == 3 || k == K - 1)
      for (int n = 0; n < N; ++n) quads += quad_nonzero[n];
  }
  d.weights = double(weights) / (double(K) * N);
  d.quads = double(quads) / (double(Kq) * N);
  d.out_blocks = double(out_blocks) / (double(K) * blocks);
  return d;
}

LinearKernel choose_kernel(const WeightDensities& d, int K, int N, const KernelCosts& costs) {
  const int Kq = (K + 3) / 4, blocks = (N + kOutBlock - 1) / kOutBlock;
  // Estimated time in dense quad-units (one multiply of 4 inputs by one channel's weights for 16 tokens).
  const double dense = double(Kq) * N;
  const double quads = d.quads * Kq * N * costs.sparse_quad;
  const double out_blocks = std::ceil(d.out_blocks * K / 4) * kOutBlock * blocks * costs.out_block;
  LinearKernel best = LinearKernel::dense;
  double best_cost = dense;
  if (K <= kMaxSparseK && quads < best_cost) best = LinearKernel::sparse_quads, best_cost = quads;
  if (K <= kMaxOutBlockK && out_blocks < best_cost) best = LinearKernel::out_blocks;
  return best;
}

PackedLinear pack_linear(const int8_t* w_kn, int K, int N, LinearKernel kernel, const WeightDensities* measured) {
  PackedLinear p;
  p.K = K;
  p.N = N;
  p.Kq = (K + 3) / 4;
  p.kernel = kernel;
  p.densities = measured ? *measured : measure_densities(w_kn, K, N);
  p.quad_density = p.densities.quads;
  p.w_sum.assign(size_t(N), 0);
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) p.w_sum[n] += w_kn[size_t(k) * N + n];
  if (kernel == LinearKernel::sparse_quads) {
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
  } else if (kernel == LinearKernel::out_blocks) {
    if (K > kMaxOutBlockK)
      throw std::invalid_argument("pack_linear: K = " + std::to_string(K) + " is too large for the output-block " +
                                  "layout (uint16 input indices: K <= " + std::to_string(kMaxOutBlockK) + ")");
    const int blocks = (N + kOutBlock - 1) / kOutBlock;
    p.block_begin.reserve(size_t(blocks) + 1);
    p.block_begin.push_back(0);
    auto weight = [&](int k, int n) { return n < N ? uint8_t(w_kn[size_t(k) * N + n]) : uint8_t(0); };
    std::vector<int> ks;
    for (int b = 0; b < blocks; ++b) {
      ks.clear();
      for (int k = 0; k < K; ++k) {
        bool any = false;
        for (int c = 0; c < kOutBlock; ++c) any |= weight(k, b * kOutBlock + c) != 0;
        if (any) ks.push_back(k);
      }
      for (size_t t = 0; t < ks.size(); t += 4) {
        uint32_t w[kOutBlock] = {0, 0, 0, 0};
        for (size_t j = 0; j < 4; ++j) {
          // Padding repeats the last input with zero weights: a valid row, nothing added.
          const bool real = t + j < ks.size();
          const int k = real ? ks[t + j] : ks.back();
          p.block_k.push_back(uint16_t(k));
          if (real)
            for (int c = 0; c < kOutBlock; ++c) w[c] |= uint32_t(weight(k, b * kOutBlock + c)) << (8 * j);
        }
        for (int c = 0; c < kOutBlock; ++c) {
          int32_t v;
          std::memcpy(&v, &w[c], 4);
          p.block_w.push_back(v);
        }
      }
      p.block_begin.push_back(uint32_t(p.block_w.size() / kOutBlock));
    }
  } else {
    p.dense.resize(size_t(N) * p.Kq);
    for (int n = 0; n < N; ++n)
      for (int kq = 0; kq < p.Kq; ++kq) p.dense[size_t(n) * p.Kq + kq] = load_quad(w_kn, K, N, n, kq);
  }
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
