// Interfaces of the engine's int8 kernels. Activations are u8 (asymmetric, one scale and zero point per token),
// weights s8 (symmetric, one scale per output channel, zero point 0). A GEMM computes Y[M][N] = A[M][K] * W[K][N].
//
// Layouts (all kernels of every ISA share them, so the engine packs once and dispatches per call):
// - Activation tile: `rows` tokens padded to Mt (a multiple of 16, at most kMaxTileRows) tokens, K padded to
//   Kq = ceil(K/4) quads: tile[(kq * Mt + m) * 4 + j] = A[m][4*kq + j]; zero where 4*kq+j >= K.
// - Dense weights: channel-major quads, dense[n * Kq + kq] = the 4 s8 weights W[4kq..4kq+3][n] as one dword.
// - Sparse weights: CSR over output channels of non-zero quads: entries [row_begin[n], row_begin[n+1]) hold the
//   quad index kq[e] (ascending, uint16: 6 bytes per entry with its quad, which matters because a whole model's
//   sparse weights stream from DRAM every forward pass; pack_linear refuses K > 4 * 65536) and the 4 weights
//   quads[e]. 1x4 blocks along K are exactly one quad each.
// - Accumulator block: acc[m * 16 + c] for token m < Mt and channel c < 16 of a 16-channel group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbs {

constexpr int kChannelGroup = 16;
constexpr int kMaxTileRows = 128;

enum class Isa { scalar, avx2, avxvnni, avx512vnni };
const char* isa_name(Isa isa);
bool isa_supported(Isa isa);
// The fastest ISA this CPU runs (checked with cpuid at run time; nothing is compiled with -march).
Isa best_isa();

struct DenseWeightsView {
  const int32_t* quads;
  int N, K, Kq;
};

struct SparseWeightsView {
  const uint32_t* row_begin;
  const uint16_t* kq;
  const int32_t* quads;
  int N, K, Kq;
};

// acc[m*16 + c] = sum_k A[m][k] * W[k][n0 + c] for m < Mt, c < nc (nc <= 16); entries c >= nc are unspecified.
using DenseGemmTileFn = void (*)(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc);
using SparseGemmTileFn = void (*)(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc,
                                  int32_t* acc);

struct EpilogueParams {
  const float* a_scale;     // [rows] per-token activation scale
  const int32_t* a_zero;    // [rows] per-token zero point
  const float* w_scale;     // [nc] per-channel weight scale
  const int32_t* w_sum;     // [nc] sum over k of the channel's weights
  const float* bias;        // [nc]
  const float* residual;    // optional: residual[m * ld_residual + c], added last
  int ld_residual;
};
// y[m * ldy + c] = fmaf(float(acc[m*16+c] - a_zero[m] * w_sum[c]), a_scale[m] * w_scale[c], bias[c])
//                  (+ residual[m * ld_residual + c]) for m < rows, c < nc. The same operations in every ISA, so
// every path is bit-exact with the scalar one.
using GemmEpilogueFn = void (*)(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy);

// Quantizes one row x[0..K) to u8 (as ONNX DynamicQuantizeLinear, but per row): lo = min(0, min x),
// hi = max(0, max x), scale = (hi - lo) / 255 (1 when hi == lo), zero = clamp(nearbyint(-lo / scale), 0, 255),
// q = clamp(nearbyint(x * (1.0f / scale)) + zero, 0, 255); writes q into the tile at token m (bytes k >= K get 0).
using QuantizePackRowFn = void (*)(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale,
                                   int32_t* zero);

struct KernelSet {
  Isa isa;
  DenseGemmTileFn dense_gemm;
  SparseGemmTileFn sparse_gemm;
  GemmEpilogueFn epilogue;
  QuantizePackRowFn quantize_pack_row;
};
// The kernels of one ISA; only call with isa_supported(isa).
const KernelSet& kernels_for(Isa isa);

// Owning packed weights of one linear layer, built once at load from the ONNX layout W[K][N] (row-major s8).
struct PackedLinear {
  int K = 0, N = 0, Kq = 0;
  bool sparse = false;
  double quad_density = 1.0;              // non-zero quads / all quads
  std::vector<int32_t> dense;             // N * Kq when !sparse
  std::vector<uint32_t> row_begin;        // when sparse
  std::vector<uint16_t> kq;               // when sparse
  std::vector<int32_t> quads;             // when sparse
  std::vector<int32_t> w_sum;             // N
  DenseWeightsView dense_view() const { return {dense.data(), N, K, Kq}; }
  SparseWeightsView sparse_view() const { return {row_begin.data(), kq.data(), quads.data(), N, K, Kq}; }
  // Work units of channel n (quads it multiplies), for splitting channels between threads.
  size_t channel_work(int n) const { return sparse ? row_begin[n + 1] - row_begin[n] : size_t(Kq); }
  // Bytes of the packed sparse weights (what a forward pass streams when they do not fit the cache).
  size_t sparse_bytes() const {
    return row_begin.size() * sizeof(row_begin[0]) + kq.size() * sizeof(kq[0]) + quads.size() * sizeof(quads[0]);
  }
};
double quad_density(const int8_t* w_kn, int K, int N);
// The largest K the sparse layout indexes (uint16 quad indices); pack_linear throws std::invalid_argument beyond.
constexpr int kMaxSparseK = 4 * 65536;
PackedLinear pack_linear(const int8_t* w_kn, int K, int N, bool sparse);

// Splits channel groups of 16 into `parts` contiguous ranges of about equal work; returns parts+1 channel bounds.
std::vector<int> split_channels(const PackedLinear& w, int parts);

}  // namespace sbs
