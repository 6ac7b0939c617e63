// Standalone tester of the engine's int8 kernels: every ISA this CPU runs is checked bit-exactly against the plain
// reference GEMM (tile kernels) or the scalar kernels (epilogue, quantize_pack_row) on seeded random shapes.
// Build: g++ -std=c++17 -O2 -Iengine/src engine/src/kernels/*.cc engine/test/kernel-tester.cc
// Exit status 0 when everything matches; otherwise the first mismatch is printed and the status is 1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/reference.h"

using namespace sbs;

namespace {

using Rng = TestRng;

struct Failure {
  bool failed = false;
  long checks = 0;
};

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

std::vector<Isa> supported_isas(bool print) {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
    const bool ok = isa_supported(isa);
    if (print) std::printf("isa %-10s %s\n", isa_name(isa), ok ? "run" : "skipped (not supported by this CPU)");
    if (ok) isas.push_back(isa);
  }
  return isas;
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

// ---- epilogue ----

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool check_epilogue(const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  for (int trial = 0; trial < 300; ++trial) {
    const int rows = trial < 20 ? 1 + trial % 4 : rng.uniform(1, kMaxTileRows);
    const int nc = 1 + trial % 16;
    const bool residual = trial % 3 != 0;
    const int ldy = nc + rng.uniform(0, 5), ld_res = nc + rng.uniform(0, 3);
    std::vector<int32_t> acc(size_t(rows) * kChannelGroup);
    const int range = trial % 4 == 0 ? 100000000 : trial % 4 == 1 ? 1000 : 20000000;
    for (auto& a : acc) a = rng.uniform(-range, range);
    std::vector<float> a_scale(rows), w_scale(nc), bias(nc), res(size_t(rows) * ld_res);
    std::vector<int32_t> a_zero(rows), w_sum(nc);
    for (auto& v : a_scale) v = float(rng.real() * 0.05 + 1e-6);
    for (auto& v : a_zero) v = rng.uniform(0, 255);
    for (auto& v : w_scale) v = float(rng.real() * 0.02 + 1e-6);
    for (auto& v : w_sum) v = rng.uniform(-390000, 390000);
    for (auto& v : bias) v = rng.normal();
    for (auto& v : res) v = 10 * rng.normal();
    const EpilogueParams params{a_scale.data(), a_zero.data(), w_scale.data(), w_sum.data(),
                                bias.data(),    residual ? res.data() : nullptr, ld_res};
    const float sentinel = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> want(size_t(rows - 1) * ldy + nc, sentinel);  // exact: writes past it are caught
    kernels_for(Isa::scalar).epilogue(acc.data(), rows, nc, params, want.data(), ldy);
    // The scalar path against the formula, written out once more here.
    for (int m = 0; m < rows; ++m)
      for (int c = 0; c < nc; ++c) {
        float v = std::fmaf(float(acc[m * 16 + c] - a_zero[m] * w_sum[c]), a_scale[m] * w_scale[c], bias[c]);
        if (residual) v += res[size_t(m) * ld_res + c];
        if (!same_bits(v, want[size_t(m) * ldy + c])) {
          std::printf("MISMATCH epilogue isa=scalar rows=%d nc=%d: y[%d][%d] got %.9g expected %.9g\n", rows, nc, m, c,
                      want[size_t(m) * ldy + c], v);
          f.failed = true;
          return false;
        }
      }
    for (Isa isa : isas) {
      std::vector<float> got(want.size(), sentinel);
      kernels_for(isa).epilogue(acc.data(), rows, nc, params, got.data(), ldy);
      for (size_t i = 0; i < got.size(); ++i)
        if (!same_bits(got[i], want[i])) {
          std::printf("MISMATCH epilogue isa=%s rows=%d nc=%d ldy=%d residual=%d: y[%zu][%zu] got %.9g expected %.9g\n",
                      isa_name(isa), rows, nc, ldy, int(residual), i / ldy, i % ldy, got[i], want[i]);
          f.failed = true;
          return false;
        }
      ++f.checks;
    }
  }
  return true;
}

// ---- quantize_pack_row ----

bool check_quantize(const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  const int Ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 768, 3072};
  const char* kinds[] = {"normal", "all-zero", "all-negative", "all-positive", "one-huge", "tiny", "wide", "halves"};
  for (int K : Ks)
    for (int kind = 0; kind < 8; ++kind) {
      const int Mt = 16 * rng.uniform(1, 8);
      const int m = rng.uniform(0, Mt - 1);
      std::vector<float> x(static_cast<size_t>(K));
      for (int k = 0; k < K; ++k) {
        switch (kind) {
          case 0: x[k] = rng.normal(); break;
          case 1: x[k] = 0.0f; break;
          case 2: x[k] = -std::fabs(rng.normal()) - 0.01f; break;
          case 3: x[k] = std::fabs(rng.normal()) + 0.01f; break;
          case 4: x[k] = k == K / 2 ? 1e30f : rng.normal(); break;
          case 5: x[k] = 1e-38f * rng.normal(); break;
          case 6: x[k] = 1000.0f * rng.normal(); break;
          // Values on .5 steps of the quantization grid exercise round-half-to-even.
          case 7: x[k] = float(rng.uniform(-510, 510)) * 0.5f * (2.0f / 255.0f); break;
        }
      }
      const size_t bytes = tile_bytes(K, Mt);
      std::vector<uint8_t> want(bytes, 0xcd);
      float want_scale;
      int32_t want_zero;
      kernels_for(Isa::scalar).quantize_pack_row(x.data(), K, want.data(), Mt, m, &want_scale, &want_zero);
      // Sanity of the scalar definition: zero point in range, values reconstruct within one step.
      if (want_zero < 0 || want_zero > 255 || !(want_scale > 0)) {
        std::printf("MISMATCH quantize_pack_row isa=scalar K=%d kind=%s: scale %g zero %d\n", K, kinds[kind],
                    want_scale, want_zero);
        f.failed = true;
        return false;
      }
      for (int k = 0; k < K && kind != 5; ++k) {
        const int q = want[(size_t(k / 4) * Mt + m) * 4 + k % 4];
        const float back = float(q - want_zero) * want_scale;
        if (std::fabs(back - x[k]) > want_scale * 0.5f + 1e-6f * std::fabs(x[k]) + 1e-30f) {
          std::printf("MISMATCH quantize_pack_row isa=scalar K=%d kind=%s: x[%d]=%g -> q=%d back %g\n", K, kinds[kind],
                      k, x[k], q, back);
          f.failed = true;
          return false;
        }
      }
      for (Isa isa : isas) {
        std::vector<uint8_t> got(bytes, 0xcd);
        float scale;
        int32_t zero;
        kernels_for(isa).quantize_pack_row(x.data(), K, got.data(), Mt, m, &scale, &zero);
        if (!same_bits(scale, want_scale) || zero != want_zero) {
          std::printf("MISMATCH quantize_pack_row isa=%s K=%d kind=%s: scale %.9g zero %d expected %.9g %d\n",
                      isa_name(isa), K, kinds[kind], scale, zero, want_scale, want_zero);
          f.failed = true;
          return false;
        }
        for (size_t i = 0; i < bytes; ++i)
          if (got[i] != want[i]) {
            std::printf("MISMATCH quantize_pack_row isa=%s K=%d kind=%s Mt=%d m=%d: tile byte %zu (kq=%zu token=%zu "
                        "j=%zu) got %d expected %d\n",
                        isa_name(isa), K, kinds[kind], Mt, m, i, i / 4 / Mt, i / 4 % Mt, i % 4, got[i], want[i]);
            f.failed = true;
            return false;
          }
        ++f.checks;
      }
    }
  return true;
}

// quantize_pack_group: every ISA against the scalar rows, bytes outside the group's 16 tokens untouched.
bool check_quantize_group(const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  const int Ks[] = {1, 3, 4, 5, 15, 16, 17, 31, 64, 65, 100, 768, 3072};
  for (int K : Ks)
    for (int trial = 0; trial < 6; ++trial) {
      const int Mt = 16 * rng.uniform(1, 8), m0 = 16 * rng.uniform(0, Mt / 16 - 1);
      const int count = trial == 0 ? 16 : trial == 1 ? 1 : rng.uniform(1, 16);
      const int ldx = K + rng.uniform(0, 9);
      std::vector<float> x(size_t(count) * ldx);
      for (auto& v : x) v = rng.normal() * (trial == 2 ? 1000.0f : 1.0f);
      if (trial == 3) std::fill(x.begin(), x.begin() + K, 0.0f);  // an all-zero row
      const size_t bytes = tile_bytes(K, Mt);
      std::vector<uint8_t> want(bytes, 0xcd);
      std::vector<float> want_scale(16, -1.0f);
      std::vector<int32_t> want_zero(16, -1);
      for (int r = 0; r < count; ++r)
        kernels_for(Isa::scalar).quantize_pack_row(x.data() + size_t(r) * ldx, K, want.data(), Mt, m0 + r,
                                                   &want_scale[r], &want_zero[r]);
      for (int kq = 0; kq < (K + 3) / 4; ++kq)
        for (int m = m0 + count; m < m0 + 16; ++m) std::memset(want.data() + (size_t(kq) * Mt + m) * 4, 0, 4);
      for (Isa isa : isas) {
        std::vector<uint8_t> got(bytes, 0xcd);
        std::vector<float> scale(16, -1.0f);
        std::vector<int32_t> zero(16, -1);
        kernels_for(isa).quantize_pack_group(x.data(), ldx, count, K, got.data(), Mt, m0, scale.data(), zero.data());
        bool ok = got == want;
        for (int r = 0; r < 16 && ok; ++r) ok = same_bits(scale[r], want_scale[r]) && zero[r] == want_zero[r];
        if (!ok) {
          std::printf("MISMATCH quantize_pack_group isa=%s K=%d Mt=%d m0=%d count=%d\n", isa_name(isa), K, Mt, m0,
                      count);
          f.failed = true;
          return false;
        }
        ++f.checks;
      }
    }
  return true;
}

// ---- split_channels ----

bool check_split(Rng& rng, Failure& f) {
  for (int trial = 0; trial < 60; ++trial) {
    const int N = trial < 6 ? std::max(1, trial * 7) : rng.uniform(1, 3100);
    const int K = 8;
    std::vector<int8_t> W(size_t(K) * N);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) W[size_t(k) * N + n] = (n < N / 3 || rng.real() < 0.5) ? 0 : 1;  // uneven work
    const PackedLinear p = pack_linear(W.data(), K, N, LinearKernel(trial % 3));
    for (int parts = 1; parts <= 9; ++parts) {
      const std::vector<int> b = split_channels(p, parts);
      bool ok = b.size() == size_t(parts) + 1 && b.front() == 0 && b.back() == N;
      for (size_t i = 1; ok && i < b.size(); ++i) ok = b[i] >= b[i - 1];
      for (size_t i = 1; ok && i + 1 < b.size(); ++i) ok = b[i] % kChannelGroup == 0 || b[i] == N;
      // Balance: no part more than the average plus one group's worth of work.
      if (ok) {
        size_t total = 0, worst = 0, max_group = 0;
        for (int n = 0; n < N; ++n) total += p.channel_work(n) + 8;
        for (int g = 0; g * 16 < N; ++g) {
          size_t w = 0;
          for (int n = g * 16; n < std::min(N, g * 16 + 16); ++n) w += p.channel_work(n) + 8;
          max_group = std::max(max_group, w);
        }
        for (size_t i = 0; i + 1 < b.size(); ++i) {
          size_t w = 0;
          for (int n = b[i]; n < b[i + 1]; ++n) w += p.channel_work(n) + 8;
          worst = std::max(worst, w);
        }
        ok = worst <= total / parts + max_group;
      }
      if (!ok) {
        std::printf("MISMATCH split_channels N=%d parts=%d kernel=%s: bounds", N, parts, linear_kernel_name(p.kernel));
        for (int v : b) std::printf(" %d", v);
        std::printf("\n");
        f.failed = true;
        return false;
      }
      ++f.checks;
    }
  }
  return true;
}

// ---- int8 attention ----

// fp64 attention of one head (the float definition the int8 kernels approximate).
void attention_reference(const float* q, const float* k, const float* v, int ld, int L, int hd, double* ctx) {
  std::vector<double> p(static_cast<size_t>(L));
  for (int i = 0; i < L; ++i) {
    double max = -1e300;
    for (int j = 0; j < L; ++j) {
      double s = 0;
      for (int d = 0; d < hd; ++d) s += double(q[size_t(i) * ld + d]) * k[size_t(j) * ld + d];
      p[j] = s / std::sqrt(double(hd));
      max = std::max(max, p[j]);
    }
    double sum = 0;
    for (int j = 0; j < L; ++j) sum += p[j] = std::exp(p[j] - max);
    for (int d = 0; d < hd; ++d) {
      double c = 0;
      for (int j = 0; j < L; ++j) c += p[j] / sum * v[size_t(j) * ld + d];
      ctx[size_t(i) * hd + d] = c;
    }
  }
}

// Every ISA's int8 attention bit-exact against the scalar one, and the scalar one within the int8 error bound of
// fp64 attention: |error| <= 0.03 x the largest |v| of the head (reported: the worst seen).
bool check_attention(const std::vector<Isa>& isas, Rng& rng, Failure& f) {
  const int lengths[] = {1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 100, 128, 384, 512};
  double worst = 0;
  int cases = 0;
  for (int hd : {16, 32, 64, 128})
    for (int L : lengths) {
      if (hd == 128 && L > 128) continue;
      const int ld = 3 * hd + 16 * rng.uniform(0, 2);
      // Scores as a trained BERT's (standard deviation about 1 to 3), all-zero values, one dominant key. Much larger
      // scores (a near one-hot softmax decided by differences below the int8 steps of q and k) err more: 11% of
      // max|v| at score deviation 16.
      const int kind = cases++ % 4;
      std::vector<float> qkv(size_t(L) * ld);
      for (auto& x : qkv) x = rng.normal() * (kind == 1 ? 1.7f : 1.0f);
      if (kind == 2)
        for (int j = 0; j < L; ++j) std::fill_n(qkv.data() + size_t(j) * ld + 2 * hd, hd, 0.0f);
      if (kind == 3)
        for (int d = 0; d < hd; ++d) qkv[size_t(L / 2) * ld + hd + d] = 3.0f * qkv[d];
      const float *q = qkv.data(), *k = q + hd, *v = q + 2 * hd;
      std::vector<uint8_t> scratch(attention_qu8s8_scratch_bytes(L, hd));
      std::vector<float> want(size_t(L) * hd);
      kernels::qu8s8_attention_head_scalar(q, k, v, ld, L, hd, want.data(), hd, scratch.data());
      std::vector<double> exact(size_t(L) * hd);
      attention_reference(q, k, v, ld, L, hd, exact.data());
      float vmax = 0;
      for (int j = 0; j < L; ++j)
        for (int d = 0; d < hd; ++d) vmax = std::max(vmax, std::fabs(v[size_t(j) * ld + d]));
      for (size_t i = 0; i < want.size(); ++i) {
        const double err = std::fabs(want[i] - exact[i]) / std::max(vmax, 1e-30f);
        worst = std::max(worst, vmax > 0 ? err : std::fabs(want[i]));
        if (!(err <= 0.03) && !(vmax == 0 && want[i] == 0)) {
          std::printf("MISMATCH attention scalar vs fp64 hd=%d L=%d: ctx[%zu] %g vs %g (max |v| %g)\n", hd, L, i,
                      want[i], exact[i], vmax);
          f.failed = true;
          return false;
        }
      }
      for (Isa isa : isas) {
        if (isa != Isa::avx512vnni) continue;  // the int8 attention's only vector path
        std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
        std::vector<uint8_t> scratch2(attention_qu8s8_scratch_bytes(L, hd));
        kernels::qu8s8_attention_head_avx512vnni(q, k, v, ld, L, hd, got.data(), hd, scratch2.data());
        for (size_t i = 0; i < got.size(); ++i)
          if (!same_bits(got[i], want[i])) {
            std::printf("MISMATCH attention isa=%s hd=%d L=%d kind=%d: ctx[%zu][%zu] got %.9g expected %.9g\n",
                        isa_name(isa), hd, L, kind, i / hd, i % hd, got[i], want[i]);
            f.failed = true;
            return false;
          }
        ++f.checks;
      }
    }
  std::printf("int8 attention: worst |error| vs fp64 attention %.4f x max|v| (bound 0.03)\n", worst);
  return true;
}

// ---- GELU ----

// The AVX-512 GELU bit-exact against the scalar one, and the scalar one within its stated error of the exact erf GELU
// (computed in double) on 2^20 points of [-12, 12] plus special values.
bool check_gelu(Rng& rng, Failure& f) {
  std::vector<float> x;
  for (int i = 0; i < (1 << 20); ++i) x.push_back(-12.0f + 24.0f * float(i) / float(1 << 20));
  for (int i = 0; i < 4096; ++i) x.push_back(rng.normal() * 3.0f);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e30f, -1e30f, 50.0f, -50.0f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity()})
    x.push_back(v);
  std::vector<float> want = x;
  kernels::f32_gelu_scalar(want.data(), int(want.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double xd = x[i];
    const double exact = std::isinf(xd) ? (xd > 0 ? xd : 0.0) : 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0)));
    const double err = std::isinf(xd) ? (xd > 0 ? (want[i] == exact ? 0.0 : 1.0) : std::fabs(want[i]))
                                      : std::fabs(want[i] - exact) / std::max(1.0, std::fabs(xd));
    worst = std::max(worst, err);
    if (!(err <= 1e-6)) {
      std::printf("MISMATCH gelu scalar vs exact: gelu(%.9g) = %.9g, exact %.9g\n", x[i], want[i], exact);
      f.failed = true;
      return false;
    }
  }
  if (isa_supported(Isa::avx512vnni))
    for (int n : {1, 15, 16, 17, 63, 64, 65, 3072, int(x.size())}) {
      std::vector<float> got(x.begin(), x.begin() + n);
      kernels::f32_gelu_avx512(got.data(), n);
      for (int i = 0; i < n; ++i)
        if (!same_bits(got[i], want[i])) {
          std::printf("MISMATCH gelu avx512 n=%d: gelu(%.9g) got %.9g expected %.9g\n", n, x[i], got[i], want[i]);
          f.failed = true;
          return false;
        }
      ++f.checks;
    }
  std::printf("gelu: worst |error| vs exact erf GELU %.2g x max(1, |x|) (bound 1e-6)\n", worst);
  return true;
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Isa> isas = supported_isas(true);
  std::printf("best_isa: %s\n", isa_name(best_isa()));
  Failure f;
  Rng rng(20240611);
  for (Isa isa : isas)
    if (kernels_for(isa).isa != isa) {
      std::printf("MISMATCH kernels_for(%s).isa\n", isa_name(isa));
      return 1;
    }

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
    if (!check_gemm(p, isas, rng, f)) return 1;
  std::printf("tile GEMM (dense + sparse quads + output blocks) and planarize: %zu problems OK\n", problems.size());
  if (!check_epilogue(isas, rng, f)) return 1;
  std::printf("epilogue: OK\n");
  if (!check_quantize(isas, rng, f)) return 1;
  if (!check_quantize_group(isas, rng, f)) return 1;
  std::printf("quantize_pack_row: OK\n");
  if (!check_split(rng, f)) return 1;
  if (!check_attention(isas, rng, f)) return 1;
  if (!check_gelu(rng, f)) return 1;
  std::printf("int8 attention: OK\n");
  std::printf("split_channels: OK\n");
  {  // The sparse layout's uint16 quad indices: the largest K packs and multiplies, one quad more is refused.
    Problem p = make_problem(16, kMaxSparseK, 3, Pattern::unstructured, 0.999, rng);
    p.W[size_t(kMaxSparseK - 1) * 3 + 1] = -77;  // the last quad index, 65535
    if (!check_gemm(p, isas, rng, f)) return 1;
    bool refused = false;
    try {
      const std::vector<int8_t> w(size_t(kMaxSparseK + 1) * 2, 1);
      pack_linear(w.data(), kMaxSparseK + 1, 2, LinearKernel::sparse_quads);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    if (!refused) {
      std::printf("MISMATCH pack_linear: sparse K = %d accepted (uint16 quad indices)\n", kMaxSparseK + 1);
      return 1;
    }
    ++f.checks;
    refused = false;
    try {
      const std::vector<int8_t> w(size_t(kMaxOutBlockK + 1) * 2, 1);
      pack_linear(w.data(), kMaxOutBlockK + 1, 2, LinearKernel::out_blocks);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    if (!refused) {
      std::printf("MISMATCH pack_linear: output-block K = %d accepted (uint16 input indices)\n", kMaxOutBlockK + 1);
      return 1;
    }
    Problem q = make_problem(16, kMaxOutBlockK, 5, Pattern::blocks4out, 0.99, rng);
    q.W[size_t(kMaxOutBlockK - 1) * 5 + 4] = 99;  // the last input index, 65535
    if (!check_gemm(q, isas, rng, f)) return 1;
    ++f.checks;
    std::printf("sparse K limits (quads %d, output blocks %d): OK\n", kMaxSparseK, kMaxOutBlockK);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("kernel-tester: all %ld checks passed on %zu ISAs in %.1f s\n", f.checks, isas.size(), seconds);
  return 0;
}
