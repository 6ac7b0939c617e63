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
// - Output-block weights (Intel's "1x4" pattern: 4 consecutive output channels share their zeros): channels go in
//   blocks of 4 (block b = channels 4b..4b+3, past N zero); each block lists the inputs k where any of its channels
//   is non-zero, ascending, taken 4 at a time as "tuples" (the last padded with its final k and zero weights).
//   Tuples [block_begin[b], block_begin[b+1]) hold inputs k[4t..4t+3] and one dword per channel, w[4t + c] with
//   byte j = W[k[4t+j]][4b+c].
// - Planar tile (the output-block kernel's activations): ceil(Mt/64) chunks of 64 tokens, each Kq*4 rows of 64
//   bytes; row k of a chunk holds A[m][k] of its tokens at byte planar_position(m % 64), which swaps the 2-bit
//   fields of m = 16i + 4L + d to 16L + 4i + d: the in-lane byte/word unpacks of 4 rows then give 16 consecutive
//   tokens per zmm (8 per ymm). Tokens past the tile's rows and rows k >= K are zero.
// - Accumulator block: acc[m * 16 + c] for token m < Mt and channel c < 16 of a 16-channel group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbs {

constexpr int kChannelGroup = 16;
constexpr int kMaxTileRows = 128;
constexpr int kPlanarChunk = 64;
constexpr int kOutBlock = 4;
inline int planar_position(int m) { return (m & ~63) | ((m & 12) << 2) | ((m & 48) >> 2) | (m & 3); }

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

struct OutBlockWeightsView {
  const uint32_t* block_begin;
  const uint16_t* k;
  const int32_t* w;
  int N, K, Kq;
};

// acc[m*16 + c] = sum_k A[m][k] * W[k][n0 + c] for m < Mt, c < nc (nc <= 16); entries c >= nc are unspecified.
using DenseGemmTileFn = void (*)(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc, int32_t* acc);
using SparseGemmTileFn = void (*)(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc,
                                  int32_t* acc);
// The same contract on a planar tile; n0 is a multiple of 4.
using OutBlockGemmTileFn = void (*)(const uint8_t* planar, int Mt, const OutBlockWeightsView& w, int n0, int nc,
                                    int32_t* acc);
// Rewrites a packed tile of Mt tokens and Kq quad rows as its planar tile (planar_bytes(Kq, Mt) bytes).
using PlanarizeTileFn = void (*)(const uint8_t* tile, int Mt, int Kq, uint8_t* planar);
inline size_t planar_bytes(int Kq, int Mt) {
  return size_t((Mt + kPlanarChunk - 1) / kPlanarChunk) * size_t(Kq) * 4 * kPlanarChunk;
}

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
// Quantizes rows r < count <= 16 of x (row stride ldx) into tokens m0 + r of the tile (m0 a multiple of 16) exactly
// as QuantizePackRowFn does each (scale[r], zero[r]), and zeroes tokens m0 + count .. m0 + 15. A group of 16
// tokens is one 64-byte line per quad row, so the vector kernels write whole lines instead of one dword per token.
using QuantizePackGroupFn = void (*)(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                     float* scale, int32_t* zero);

struct KernelSet {
  Isa isa;
  DenseGemmTileFn dense_gemm;
  SparseGemmTileFn sparse_gemm;
  OutBlockGemmTileFn out_block_gemm;
  GemmEpilogueFn epilogue;
  QuantizePackRowFn quantize_pack_row;
  QuantizePackGroupFn quantize_pack_group;
  PlanarizeTileFn planarize;
};
// The kernels of one ISA; only call with isa_supported(isa).
const KernelSet& kernels_for(Isa isa);

// Which tile GEMM runs a linear layer.
enum class LinearKernel { dense, sparse_quads, out_blocks };
const char* linear_kernel_name(LinearKernel kernel);

// What packing measured of a linear's weights: the shares of non-zero weights, of non-zero quads (4 consecutive
// inputs of one output) and of non-zero (4-output block, input) pairs; each kernel's work follows one of them.
struct WeightDensities {
  double weights = 1.0, quads = 1.0, out_blocks = 1.0;
};
WeightDensities measure_densities(const int8_t* w_kn, int K, int N);

// Relative cost per unit of work of each kernel (dense = 1 per quad): measured with engine/bench/kernel-bench.
struct KernelCosts {
  double sparse_quad = 2.2;  // per non-zero quad
  double out_block = 1.35;   // per (tuple, channel): 4 multiply-adds of one channel
};
// The kernel with the least estimated time for these weights; the choice comes from the weights alone.
LinearKernel choose_kernel(const WeightDensities& d, int K, int N, const KernelCosts& costs);

// Owning packed weights of one linear layer, built once at load from the ONNX layout W[K][N] (row-major s8).
struct PackedLinear {
  int K = 0, N = 0, Kq = 0;
  LinearKernel kernel = LinearKernel::dense;
  WeightDensities densities;
  double quad_density = 1.0;              // non-zero quads / all quads
  std::vector<int32_t> dense;             // N * Kq when dense
  std::vector<uint32_t> row_begin;        // when sparse_quads
  std::vector<uint16_t> kq;               // when sparse_quads
  std::vector<int32_t> quads;             // when sparse_quads
  std::vector<uint32_t> block_begin;      // when out_blocks: ceil(N/4) + 1
  std::vector<uint16_t> block_k;          // when out_blocks: 4 per tuple
  std::vector<int32_t> block_w;           // when out_blocks: 4 per tuple
  std::vector<int32_t> w_sum;             // N
  bool sparse() const { return kernel != LinearKernel::dense; }
  DenseWeightsView dense_view() const { return {dense.data(), N, K, Kq}; }
  SparseWeightsView sparse_view() const { return {row_begin.data(), kq.data(), quads.data(), N, K, Kq}; }
  OutBlockWeightsView out_block_view() const { return {block_begin.data(), block_k.data(), block_w.data(), N, K, Kq}; }
  // Work units of channel n (quads, or tuples: 4 multiply-adds each), for splitting channels between threads.
  size_t channel_work(int n) const {
    switch (kernel) {
      case LinearKernel::sparse_quads: return row_begin[n + 1] - row_begin[n];
      case LinearKernel::out_blocks: return block_begin[n / kOutBlock + 1] - block_begin[n / kOutBlock];
      default: return size_t(Kq);
    }
  }
  // Bytes of the packed weights (what a forward pass streams when they do not fit the cache).
  size_t packed_bytes() const {
    return dense.size() * 4 + row_begin.size() * 4 + kq.size() * 2 + quads.size() * 4 + block_begin.size() * 4 +
           block_k.size() * 2 + block_w.size() * 4;
  }
};
double quad_density(const int8_t* w_kn, int K, int N);
// The largest K the sparse layouts index (uint16 indices); pack_linear throws std::invalid_argument beyond.
constexpr int kMaxSparseK = 4 * 65536;
constexpr int kMaxOutBlockK = 65536;
// `measured`: the weights' densities when the caller has them already (measuring reads every weight once more).
PackedLinear pack_linear(const int8_t* w_kn, int K, int N, LinearKernel kernel,
                         const WeightDensities* measured = nullptr);

// Int8 attention for one head of one row of L tokens (the scheme: qu8s8-attention.h): q/k/v point at the row's
// first token's head slice in the fused QKV matrix (row stride ld), ctx likewise (stride ldc). head_dim must be a
// multiple of 16 and at most kMaxInt8AttentionHeadDim; scratch holds attention_qu8s8_scratch_bytes(L, head_dim).
constexpr int kMaxInt8AttentionHeadDim = 256;
inline size_t attention_qu8s8_scratch_bytes(int max_len, int head_dim) {
  const size_t Lp = size_t(max_len + 15) / 16 * 16;
  return 2 * Lp * size_t(head_dim) + Lp * (2 * 4 + 4 * 4 + 4) + 8 * size_t(head_dim) + 64 * 8;
}
using AttentionHeadFn = void (*)(const float* q, const float* k, const float* v, int ld, int L, int head_dim,
                                 float* ctx, int ldc, void* scratch);
namespace kernels {
void qu8s8_attention_head_scalar(const float* q, const float* k, const float* v, int ld, int L, int head_dim,
                                 float* ctx, int ldc, void* scratch);
void qu8s8_attention_head_avx512vnni(const float* q, const float* k, const float* v, int ld, int L, int head_dim,
                                     float* ctx, int ldc, void* scratch);
// x = gelu(x) in place (f32-gelu.h: erf GELU, worst-case |error| 4.2e-7 x max(1, |x|)); the same bits on both paths.
void f32_gelu_scalar(float* x, int n);
void f32_gelu_avx512(float* x, int n);
}  // namespace kernels

// Splits channel groups of 16 into `parts` contiguous ranges of about equal work; returns parts+1 channel bounds.
std::vector<int> split_channels(const PackedLinear& w, int parts);

}  // namespace sbs
