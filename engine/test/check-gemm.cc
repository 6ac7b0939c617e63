// Kernel tester: packing, planarize and the dense, sparse-quad and output-block tile GEMMs of every ISA against the
// plain reference GEMM, on every weight pattern and on shapes from K = 1 to the uint16 index limits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tester.h"

namespace sbs::tester {

namespace {

int round16(int x) { return (x + 15) / 16 * 16; }

// blocks4in: 4 consecutive inputs of one output (one quad); blocks4out: 4 consecutive outputs at one input (Intel's
// "1x4"); empty_blocks: blocks4out with every third block of 4 channels all zero.
enum class Pattern { dense, unstructured, blocks4in, blocks4out, empty_blocks, empty_rows, all_zero, extreme_neg,
                     extreme_pos, extreme_mixed };

const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::dense: return "dense";
    case Pattern::unstructured: return "unstructured";
    case Pattern::blocks4in: return "4-input-blocks";
    case Pattern::blocks4out: return "4-output-blocks";
    case Pattern::empty_blocks: return "4-output-blocks-some-empty";
    case Pattern::empty_rows: return "empty-rows";
    case Pattern::all_zero: return "all-zero";
    case Pattern::extreme_neg: return "extreme(255 x -128)";
    case Pattern::extreme_pos: return "extreme(255 x 127)";
    case Pattern::extreme_mixed: return "extreme(255 x +-)";
  }
  return "?";
}

struct Problem {
  int M, K, N;
  Pattern pattern;
  double sparsity;
  std::vector<uint8_t> A;  // M x K
  std::vector<int8_t> W;   // K x N
  std::string describe() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "M=%d K=%d N=%d weights=%s sparsity=%.2f", M, K, N, pattern_name(pattern), sparsity);
    return buf;
  }
};

Problem make_problem(int M, int K, int N, Pattern pattern, double sparsity, Rng& rng) {
  Problem p{M, K, N, pattern, sparsity, std::vector<uint8_t>(size_t(M) * K), std::vector<int8_t>(size_t(K) * N)};
  const bool extreme = pattern == Pattern::extreme_neg || pattern == Pattern::extreme_pos ||
                       pattern == Pattern::extreme_mixed;
  for (auto& a : p.A) a = extreme ? 255 : uint8_t(rng.uniform(0, 255));
  auto nonzero = [&rng] {
    int v;
    do v = rng.uniform(-128, 127);
    while (v == 0);
    return int8_t(v);
  };
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) {
      int8_t& w = p.W[size_t(k) * N + n];
      switch (pattern) {
        case Pattern::dense: w = int8_t(rng.uniform(-128, 127)); break;
        case Pattern::unstructured: w = rng.real() < sparsity ? 0 : nonzero(); break;
        case Pattern::blocks4in:
        case Pattern::blocks4out:
        case Pattern::empty_blocks: break;  // below
        case Pattern::empty_rows: w = (n % 3 == 1 || rng.real() < sparsity) ? 0 : nonzero(); break;
        case Pattern::all_zero: w = 0; break;
        case Pattern::extreme_neg: w = -128; break;
        case Pattern::extreme_pos: w = 127; break;
        case Pattern::extreme_mixed: w = (n % 2) ? 127 : -128; break;
      }
    }
  if (pattern == Pattern::blocks4in)
    for (int kq = 0; kq < (K + 3) / 4; ++kq)
      for (int n = 0; n < N; ++n) {
        const bool keep = rng.real() >= sparsity;
        for (int k = 4 * kq; k < std::min(K, 4 * kq + 4); ++k) p.W[size_t(k) * N + n] = keep ? nonzero() : 0;
      }
  if (pattern == Pattern::blocks4out || pattern == Pattern::empty_blocks)
    for (int k = 0; k < K; ++k)
      for (int b = 0; b < (N + 3) / 4; ++b) {
        const bool keep = rng.real() >= sparsity && !(pattern == Pattern::empty_blocks && b % 3 == 1);
        for (int n = 4 * b; n < std::min(N, 4 * b + 4); ++n) p.W[size_t(k) * N + n] = keep ? nonzero() : 0;
      }
  return p;
}

bool check_packing(const Problem& p, const PackedLinear& d, const PackedLinear& s, const PackedLinear& o,
                   Failure& f) {
  const int Kq = (p.K + 3) / 4;
  auto fail = [&](const char* what) {
    std::printf("MISMATCH pack_linear: %s (%s)\n", what, p.describe().c_str());
    f.failed = true;
    return false;
  };
  const bool blocks = p.K <= kMaxOutBlockK;
  if (d.Kq != Kq || s.Kq != Kq || d.N != p.N || s.N != p.N || d.kernel != LinearKernel::dense ||
      s.kernel != LinearKernel::sparse_quads || (blocks && (o.Kq != Kq || o.N != p.N || o.kernel != LinearKernel::out_blocks)))
    return fail("header");
  if (s.row_begin.size() != size_t(p.N) + 1 || s.kq.size() != s.quads.size()) return fail("CSR sizes");
  if (d.dense.size() != size_t(p.N) * Kq) return fail("dense size");
  size_t nonzero = 0, weights = 0;
  for (int n = 0; n < p.N; ++n) {
    int32_t sum = 0;
    for (int k = 0; k < p.K; ++k) sum += p.W[size_t(k) * p.N + n], weights += p.W[size_t(k) * p.N + n] != 0;
    if (d.w_sum[n] != sum || s.w_sum[n] != sum || (blocks && o.w_sum[n] != sum)) return fail("w_sum");
    for (uint32_t e = s.row_begin[n]; e < s.row_begin[n + 1]; ++e) {
      if (s.quads[e] == 0) return fail("zero quad in CSR");
      if (e > s.row_begin[n] && s.kq[e] <= s.kq[e - 1]) return fail("CSR kq not ascending");
      if (s.kq[e] >= uint32_t(Kq) || d.dense[size_t(n) * Kq + s.kq[e]] != s.quads[e]) return fail("CSR vs dense");
    }
    for (int kq = 0; kq < Kq; ++kq) nonzero += d.dense[size_t(n) * Kq + kq] != 0;
  }
  if (nonzero != s.kq.size()) return fail("CSR count vs dense non-zero quads");
  // Output blocks: each block's tuples list exactly the inputs where one of its channels is non-zero, ascending,
  // padded with zero weights, and the weights read back.
  const int block_count = (p.N + 3) / 4;
  if (blocks && (o.block_begin.size() != size_t(block_count) + 1 || o.block_k.size() != o.block_w.size()))
    return fail("block sizes");
  size_t block_pairs = 0;
  for (int b = 0; b < block_count; ++b) {
    std::vector<int> want;
    for (int k = 0; k < p.K; ++k) {
      bool any = false;
      for (int n = 4 * b; n < std::min(p.N, 4 * b + 4); ++n) any |= p.W[size_t(k) * p.N + n] != 0;
      if (any) want.push_back(k);
    }
    block_pairs += want.size();
    if (!blocks) continue;
    if (o.block_begin[b + 1] - o.block_begin[b] != (want.size() + 3) / 4) return fail("tuples per block");
    for (uint32_t t = o.block_begin[b]; t < o.block_begin[b + 1]; ++t)
      for (int j = 0; j < 4; ++j) {
        const size_t i = (t - o.block_begin[b]) * 4 + j;
        const int k = o.block_k[size_t(t) * 4 + j];
        if (k >= p.K || (i < want.size() && k != want[i])) return fail("block inputs");
        for (int c = 0; c < 4; ++c) {
          const int n = 4 * b + c;
          const int8_t got = int8_t(uint32_t(o.block_w[size_t(t) * 4 + c]) >> (8 * j));
          const int8_t expect = (i < want.size() && n < p.N) ? p.W[size_t(k) * p.N + n] : 0;
          if (got != expect) return fail("block weights");
        }
      }
  }
  const double density = double(nonzero) / (double(p.N) * Kq);
  const WeightDensities m = measure_densities(p.W.data(), p.K, p.N);
  if (std::fabs(d.quad_density - density) > 1e-12 || std::fabs(s.quad_density - density) > 1e-12 ||
      std::fabs(quad_density(p.W.data(), p.K, p.N) - density) > 1e-12 || std::fabs(m.quads - density) > 1e-12 ||
      std::fabs(m.weights - double(weights) / (double(p.K) * p.N)) > 1e-12 ||
      std::fabs(m.out_blocks - double(block_pairs) / (double(p.K) * block_count)) > 1e-12)
    return fail("densities");
  ++f.checks;
  return true;
}

// Runs the dense, sparse-quad and output-block tile kernels of `isa` over the whole problem with tiles of Mt
// tokens (the last tile rounded up to 16 if round_last) and compares every accumulator with the reference; the
// planar tile of `isa` must equal the scalar one byte for byte.
bool check_tiles(const Problem& p, const std::vector<int32_t>& C, const PackedLinear& d, const PackedLinear& s,
                 const PackedLinear& o, Isa isa, int Mt, bool round_last, Failure& f) {
  const KernelSet& ks = kernels_for(isa);
  for (int m0 = 0; m0 < p.M; m0 += Mt) {
    const int rows = std::min(Mt, p.M - m0);
    const int mt = (round_last && rows < Mt) ? round16(rows) : Mt;
    // Exactly sized, so that AddressSanitizer sees any access past the tile or the accumulator block.
    std::vector<uint8_t> tile(tile_bytes(p.K, mt));
    std::vector<int32_t> acc(size_t(mt) * kChannelGroup);
    pack_tile(p.A.data(), p.K, m0, rows, mt, tile.data());
    const int Kq = (p.K + 3) / 4;
    std::vector<uint8_t> planar(planar_bytes(Kq, mt), 0xcd), want_planar(planar.size(), 0xcd);
    kernels_for(Isa::scalar).planarize(tile.data(), mt, Kq, want_planar.data());
    ks.planarize(tile.data(), mt, Kq, planar.data());
    if (planar != want_planar) {
      std::printf("MISMATCH planarize isa=%s %s Mt=%d\n", isa_name(isa), p.describe().c_str(), mt);
      f.failed = true;
      return false;
    }
    const char* names[] = {"dense_gemm", "sparse_gemm", "out_block_gemm"};
    for (int n0 = 0; n0 < p.N; n0 += kChannelGroup) {
      const int nc = std::min(kChannelGroup, p.N - n0);
      for (int kernel = 0; kernel < (p.K <= kMaxOutBlockK ? 3 : 2); ++kernel) {
        std::fill(acc.begin(), acc.end(), 0x7f7f7f7f);
        if (kernel == 1)
          ks.sparse_gemm(tile.data(), mt, s.sparse_view(), n0, nc, acc.data());
        else if (kernel == 2)
          ks.out_block_gemm(planar.data(), mt, o.out_block_view(), n0, nc, acc.data());
        else
          ks.dense_gemm(tile.data(), mt, d.dense_view(), n0, nc, acc.data());
        for (int m = 0; m < mt; ++m)
          for (int c = 0; c < nc; ++c) {
            const int32_t got = acc[size_t(m) * kChannelGroup + c];
            const int32_t want = m < rows ? C[size_t(m0 + m) * p.N + n0 + c] : 0;  // padding tokens are zero
            if (got != want) {
              std::printf("MISMATCH %s isa=%s %s Mt=%d tile_m0=%d n0=%d nc=%d: acc[m=%d][c=%d] got %d expected %d\n",
                          names[kernel], isa_name(isa), p.describe().c_str(), mt, m0, n0, nc,
                          m, c, got, want);
              f.failed = true;
              return false;
            }
          }
        ++f.checks;
      }
    }
  }
  return true;
}

bool check_gemm(const Problem& p, const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  std::vector<int32_t> C(size_t(p.M) * p.N);
  qu8s8_gemm_reference(p.A.data(), p.M, p.K, p.W.data(), p.N, C.data());
  const PackedLinear d = pack_linear(p.W.data(), p.K, p.N, LinearKernel::dense);
  const PackedLinear s = pack_linear(p.W.data(), p.K, p.N, LinearKernel::sparse_quads);
  // Past the output-block layout's K limit only the other two are packed (checked: `o` stays empty).
  const bool blocks = p.K <= kMaxOutBlockK;
  const PackedLinear o = blocks ? pack_linear(p.W.data(), p.K, p.N, LinearKernel::out_blocks) : PackedLinear{};
  if (!check_packing(p, d, s, o, f)) return false;
  // Every tile height on small problems; on large ones the engine's 64, the single-tile one and one at random.
  std::vector<int> mts;
  const double work = double(p.M) * p.K * p.N;
  if (work <= 2.5e5) {
    for (int mt = 16; mt <= kMaxTileRows; mt += 16) mts.push_back(mt);
  } else {
    mts = {64, round16(std::min(p.M, kMaxTileRows)), 16 * rng.uniform(1, 8)};
    std::sort(mts.begin(), mts.end());
    mts.erase(std::unique(mts.begin(), mts.end()), mts.end());
  }
  for (Isa isa : isas)
    for (size_t i = 0; i < mts.size(); ++i)
      if (!check_tiles(p, C, d, s, o, isa, mts[i], (i + mts.size()) % 2 == 0, f)) return false;
  return true;
}

}  // namespace

bool check_gemm_suite(const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  struct Spec {
    Pattern pattern;
    double sparsity;
  };
  const Spec specs[] = {{Pattern::dense, 0.0},         {Pattern::unstructured, 0.5}, {Pattern::unstructured, 0.9},
                        {Pattern::unstructured, 0.99}, {Pattern::all_zero, 1.0},     {Pattern::blocks4in, 0.9},
                        {Pattern::blocks4in, 0.5},     {Pattern::blocks4out, 0.8},   {Pattern::blocks4out, 0.5},
                        {Pattern::empty_blocks, 0.9},     {Pattern::empty_rows, 0.7},   {Pattern::extreme_neg, 0.0},
                        {Pattern::extreme_pos, 0.0},   {Pattern::extreme_mixed, 0.0}};
  const int Ms[] = {1, 3, 16, 17, 64, 100, 128};
  std::vector<Problem> problems;
  int next_m = 0;
  // Small K and N: every combination with every weight pattern, M cycling through its list.
  for (int K : {1, 3, 4, 5, 63, 64, 65})
    for (int N : {1, 15, 16, 17, 48})
      for (const Spec& s : specs) problems.push_back(make_problem(Ms[next_m++ % 7], K, N, s.pattern, s.sparsity, rng));
  // BERT-sized K, and a wide N, on fewer patterns.
  for (const Spec& s : specs) {
    const int m = next_m++;
    problems.push_back(make_problem(Ms[m % 7], 768, m % 2 ? 17 : 48, s.pattern, s.sparsity, rng));
    problems.push_back(make_problem(Ms[4 + m % 3], 65, 2304, s.pattern, s.sparsity, rng));
  }
  // K = 3072: int32 sums of up to 3072 * 255 * 128 (about 1e8), the largest the engine sees.
  for (const Spec& s : {specs[0], specs[2], specs[5], specs[7], specs[11], specs[12], specs[13]})
    problems.push_back(make_problem(128, 3072, 17, s.pattern, s.sparsity, rng));
  problems.push_back(make_problem(100, 3072, 48, Pattern::unstructured, 0.9, rng));

  for (const Problem& p : problems)
    if (!check_gemm(p, isas, rng, f)) return false;
  std::printf("tile GEMM (dense + sparse quads + output blocks) and planarize: %zu problems OK\n", problems.size());
  return true;
}

bool check_sparse_k_limits(const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  {  // The sparse layout's uint16 quad indices: the largest K packs and multiplies, one quad more is refused.
    Problem p = make_problem(16, kMaxSparseK, 3, Pattern::unstructured, 0.999, rng);
    p.W[size_t(kMaxSparseK - 1) * 3 + 1] = -77;  // the last quad index, 65535
    if (!check_gemm(p, isas, rng, f)) return false;
    // One input more than a layout indexes must be refused, not packed with wrapped indices.
    auto refuses = [](int K, LinearKernel kernel) {
      try {
        const std::vector<int8_t> w(size_t(K) * 2, 1);
        pack_linear(w.data(), K, 2, kernel);
      } catch (const std::invalid_argument&) {
        return true;
      }
      std::printf("MISMATCH pack_linear: %s K = %d accepted (uint16 indices)\n", linear_kernel_name(kernel), K);
      return false;
    };
    if (!refuses(kMaxSparseK + 1, LinearKernel::sparse_quads)) return false;
    ++f.checks;
    if (!refuses(kMaxOutBlockK + 1, LinearKernel::out_blocks)) return false;
    Problem q = make_problem(16, kMaxOutBlockK, 5, Pattern::blocks4out, 0.99, rng);
    q.W[size_t(kMaxOutBlockK - 1) * 5 + 4] = 99;  // the last input index, 65535
    if (!check_gemm(q, isas, rng, f)) return false;
    ++f.checks;
    std::printf("sparse K limits (quads %d, output blocks %d): OK\n", kMaxSparseK, kMaxOutBlockK);
  }
  return true;
}

}  // namespace sbs::tester
