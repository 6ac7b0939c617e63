// Single-thread throughput of the tile GEMM kernels on BERT-Base shapes, dense vs CSR-sparse weights.
// Build: g++ -O3 -std=c++17 -Iengine/src engine/src/kernels/*.cc engine/bench/kernel-bench.cc -o kernel-bench
// Usage: kernel-bench [--isa scalar|avx2|avxvnni|avx512vnni] [--mt 16..128] [--quick]
//        kernel-bench --model unstr|1x4 [--m 128] [--mt 64] [--layers 12] [--isa NAME]: the GEMMs of a whole BERT-Base forward pass (12
//        layers x qkv, attention_output, intermediate, output; each layer its own weights, 90% sparse) in the
//        engine's loop order, so that the packed weights (tens of MB) stream from DRAM as in the real model.
//
// GMAC/s "effective" counts the dense M*N*K multiply-adds whatever the sparsity (what a user of the layer
// gets); "real" counts the products the sparse kernel does: 4 per stored quad and token, zeros inside a quad
// included. The dense and sparse runs of one case alternate and each figure is the median of its samples, so
// drift of the clock or of the machine's load hits both alike.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/reference.h"

using namespace sbs;

namespace {

using Clock = std::chrono::steady_clock;

using Rng = TestRng;

// Clock under load, from a chain of dependent adds (1 cycle each on every x86 core of the last decade).
double measure_ghz() {
#if defined(__x86_64__)
  const long iters = 50'000'000;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    long n = iters, x = 0;
    __asm__ volatile(
        "1:\n"
        "add $1, %1\n add $1, %1\n add $1, %1\n add $1, %1\n"
        "add $1, %1\n add $1, %1\n add $1, %1\n add $1, %1\n"
        "dec %0\n jnz 1b\n"
        : "+r"(n), "+r"(x));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 8.0 * iters / s / 1e9);
  }
  return best;
#else
  return 0;
#endif
}

double cpuinfo_mhz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("cpu MHz", 0) == 0) return std::atof(line.substr(line.find(':') + 1).c_str());
  return 0;
}

enum class Sparsity { dense, unstructured, blocks1x4 };

std::vector<int8_t> make_weights(int K, int N, Sparsity kind, double density, Rng& rng) {
  std::vector<int8_t> w(size_t(K) * N);
  if (kind == Sparsity::blocks1x4) {
    for (int kq = 0; kq < (K + 3) / 4; ++kq)
      for (int n = 0; n < N; ++n) {
        const bool keep = rng.real() < density;
        for (int k = 4 * kq; k < std::min(K, 4 * kq + 4); ++k) w[size_t(k) * N + n] = keep ? rng.nonzero_s8() : 0;
      }
  } else {
    for (auto& v : w) v = (kind == Sparsity::dense || rng.real() < density) ? rng.nonzero_s8() : 0;
  }
  return w;
}

// 64-byte aligned like the engine's tiles: a misaligned tile splits every zmm load over two cache lines.
struct AlignedBytes {
  uint8_t* p;
  explicit AlignedBytes(size_t n) : p(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {}
  AlignedBytes(AlignedBytes&& o) noexcept : p(o.p) { o.p = nullptr; }
  AlignedBytes(const AlignedBytes&) = delete;
  ~AlignedBytes() { std::free(p); }
  uint8_t* data() { return p; }
};

struct Gemm {
  int M, K, N, Mt;
  std::vector<AlignedBytes> tiles;
  std::vector<int> tile_rows;
  std::vector<int32_t> acc = std::vector<int32_t>(size_t(kMaxTileRows) * kChannelGroup);

  Gemm(int M_, int K_, int N_, int Mt_, Rng& rng) : M(M_), K(K_), N(N_), Mt(Mt_) {
    std::vector<uint8_t> A(size_t(M) * K);
    for (auto& a : A) a = uint8_t(rng.next());
    for (int m0 = 0; m0 < M; m0 += Mt) {
      const int rows = std::min(Mt, M - m0), mt = (rows + 15) / 16 * 16;
      tiles.emplace_back(tile_bytes(K, mt));
      pack_tile(A.data(), K, m0, rows, mt, tiles.back().data());
      tile_rows.push_back(mt);
    }
  }
  // The engine's order: for each tile of tokens, every 16-channel group.
  void run(const KernelSet& ks, const PackedLinear& w) {
    for (size_t t = 0; t < tiles.size(); ++t)
      for (int n0 = 0; n0 < N; n0 += kChannelGroup) {
        const int nc = std::min(kChannelGroup, N - n0);
        if (w.sparse)
          ks.sparse_gemm(tiles[t].data(), tile_rows[t], w.sparse_view(), n0, nc, acc.data());
        else
          ks.dense_gemm(tiles[t].data(), tile_rows[t], w.dense_view(), n0, nc, acc.data());
      }
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per GEMM for each of the packed weights, measured alternately; median of `samples`.
std::vector<double> time_alternating(Gemm& g, const KernelSet& ks, const std::vector<const PackedLinear*>& ws,
                                     int samples) {
  std::vector<int> reps(ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {  // calibrate: about 15 ms per sample
    g.run(ks, *ws[i]);
    const auto t0 = Clock::now();
    g.run(ks, *ws[i]);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    reps[i] = std::max(1, int(0.015 / std::max(s, 1e-9)));
  }
  std::vector<std::vector<double>> times(ws.size());
  for (int s = 0; s < samples; ++s)
    for (size_t i = 0; i < ws.size(); ++i) {
      const auto t0 = Clock::now();
      for (int r = 0; r < reps[i]; ++r) g.run(ks, *ws[i]);
      times[i].push_back(std::chrono::duration<double>(Clock::now() - t0).count() / reps[i]);
    }
  std::vector<double> out;
  for (auto& t : times) out.push_back(median(t));
  return out;
}

struct Case {
  const char* name;
  Sparsity kind;
  double density;
};

// The engine's Engine::gemm loop over all channel groups of one linear layer (single thread).
bool g_tiles_outer = false;
void engine_gemm(const KernelSet& ks, const PackedLinear& w, const std::vector<AlignedBytes>& tiles,
                 const std::vector<int>& rows, int32_t* acc) {
  const int groups = (w.N + kChannelGroup - 1) / kChannelGroup, nt = int(tiles.size());
  for (int i = 0; i < groups * nt; ++i) {
    const int g = g_tiles_outer ? i % groups : i / nt, t = g_tiles_outer ? i / groups : i % nt;
    const int n0 = g * kChannelGroup, nc = std::min(kChannelGroup, w.N - n0);
    {
      if (w.sparse)
        ks.sparse_gemm(tiles[t].p, rows[t], w.sparse_view(), n0, nc, acc);
      else
        ks.dense_gemm(tiles[t].p, rows[t], w.dense_view(), n0, nc, acc);
    }
  }
}

int model_bench(const KernelSet& ks, Sparsity kind, int M, int Mt, int layers) {
  Rng rng(7);
  const int H = 768, I = 3072;
  const int shapes[4][2] = {{H, 3 * H}, {H, H}, {H, I}, {I, H}};
  std::vector<PackedLinear> linears;
  size_t bytes = 0;
  double macs = 0;
  for (int l = 0; l < layers; ++l)
    for (const auto& s : shapes) {
      const std::vector<int8_t> w = make_weights(s[0], s[1], kind, 0.1, rng);
      linears.push_back(pack_linear(w.data(), s[0], s[1], true));
      bytes += linears.back().sparse_bytes();
      macs += double(M) * s[0] * s[1];
    }
  std::vector<std::vector<AlignedBytes>> tiles(2);  // K = 768 and 3072
  std::vector<int> rows;
  for (int m0 = 0; m0 < M; m0 += Mt) rows.push_back((std::min(Mt, M - m0) + 15) / 16 * 16);
  for (int i = 0; i < 2; ++i) {
    const int K = i ? I : H;
    std::vector<uint8_t> A(size_t(M) * K);
    for (auto& a : A) a = uint8_t(rng.next());
    for (int m0 = 0, t = 0; m0 < M; m0 += Mt, ++t) {
      tiles[i].emplace_back(tile_bytes(K, rows[t]));
      pack_tile(A.data(), K, m0, std::min(Mt, M - m0), rows[t], tiles[i].back().data());
    }
  }
  std::vector<int32_t> acc(size_t(kMaxTileRows) * kChannelGroup);
  std::vector<double> per_kind[4];
  std::vector<double> total;
  for (int run = 0; run < 12; ++run) {
    double sum = 0;
    double t4[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < linears.size(); ++i) {
      const auto t0 = Clock::now();
      engine_gemm(ks, linears[i], tiles[linears[i].K == I], rows, acc.data());
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      t4[i % 4] += s;
      sum += s;
    }
    if (run < 2) continue;  // warm-up
    total.push_back(sum);
    for (int k = 0; k < 4; ++k) per_kind[k].push_back(t4[k]);
  }
  const double t = median(total);
  std::printf("model %s %d layers M=%d Mt=%d: packed sparse weights %.1f MB; all GEMMs %.2f ms = %.0f eff GMAC/s single thread "
              "(qkv %.2f, attn_out %.2f, inter %.2f, out %.2f ms)\n",
              kind == Sparsity::unstructured ? "unstr 10%" : "1x4 10%", layers, M, Mt, bytes / 1e6, t * 1e3, macs / t / 1e9,
              median(per_kind[0]) * 1e3, median(per_kind[1]) * 1e3, median(per_kind[2]) * 1e3,
              median(per_kind[3]) * 1e3);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  int Mt = 64;
  bool quick = false;
  int model = 0, model_m = 128, model_layers = 12;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--mt" && i + 1 < argc) Mt = std::atoi(argv[++i]);
    else if (a == "--tiles-outer") g_tiles_outer = true;
    else if (a == "--layers" && i + 1 < argc) model_layers = std::atoi(argv[++i]);
    else if (a == "--m" && i + 1 < argc) model_m = std::atoi(argv[++i]);
    else if (a == "--model" && i + 1 < argc) model = std::string(argv[++i]) == "1x4" ? 2 : 1;
    else if (a == "--isa" && i + 1 < argc) {
      const std::string name = argv[++i];
      for (Isa c : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni})
        if (name == isa_name(c)) isa = c;
    } else {
      std::fprintf(stderr, "usage: %s [--isa NAME] [--mt 16..128] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (!isa_supported(isa) || Mt < 16 || Mt > kMaxTileRows || Mt % 16) {
    std::fprintf(stderr, "isa %s not supported or bad --mt\n", isa_name(isa));
    return 2;
  }
  const KernelSet& ks = kernels_for(isa);
  if (model) return model_bench(ks, model == 2 ? Sparsity::blocks1x4 : Sparsity::unstructured, model_m, Mt, model_layers);
  const double ghz = measure_ghz();
  // Peak of one core: 2 VPDPBUSD per cycle x 64 MACs (zmm) or 32 (ymm); AVX2: 2 VPMADDWD x 16 (8 tokens x 4 k
  // take two of them); scalar: nominally 1.
  const double macs_per_cycle = isa == Isa::avx512vnni ? 128 : isa == Isa::avxvnni ? 64 : isa == Isa::avx2 ? 32 : 1;
  const double peak = macs_per_cycle * ghz;
  std::printf("isa %s, Mt %d (last tile rounded up to 16), single thread\n", isa_name(isa), Mt);
  std::printf("clock %.2f GHz measured (dependent-add chain; /proc/cpuinfo says %.0f MHz); peak %.0f GMAC/s "
              "(%.0f MAC/cycle)\n\n",
              ghz, cpuinfo_mhz(), peak, macs_per_cycle);

  const Case cases[] = {{"unstr 20%", Sparsity::unstructured, 0.2},
                        {"unstr 10%", Sparsity::unstructured, 0.1},
                        {"1x4 20%", Sparsity::blocks1x4, 0.2},
                        {"1x4 10%", Sparsity::blocks1x4, 0.1}};
  const int shapes[][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
  const int samples = quick ? 5 : 9;
  Rng rng(42);

  std::printf("%-5s %-11s %-10s %7s %9s %7s %10s %9s %8s\n", "M", "K x N", "weights", "q.dens", "eff GMAC/s",
              "%peak", "real GMAC/s", "vs dense", "ms");
  for (int M : {128, 384}) {
    for (const auto& s : shapes) {
      const int K = s[0], N = s[1];
      Gemm g(M, K, N, Mt, rng);
      const double macs = double(M) * K * N;
      const std::vector<int8_t> wd = make_weights(K, N, Sparsity::dense, 1.0, rng);
      const PackedLinear dense = pack_linear(wd.data(), K, N, false);
      const PackedLinear dense_csr = pack_linear(wd.data(), K, N, true);
      char shape[32];
      std::snprintf(shape, sizeof shape, "%dx%d", K, N);
      auto row = [&](const char* label, const PackedLinear& w, double t, double t_dense) {
        const double real = w.sparse ? double(w.kq.size()) * 4 * M : macs;
        std::printf("%-5d %-11s %-10s %6.1f%% %9.1f %6.1f%% %10.1f %8.2fx %8.3f\n", M, shape, label,
                    100 * w.quad_density, macs / t / 1e9, 100 * macs / t / 1e9 / peak, real / t / 1e9, t_dense / t,
                    t * 1e3);
      };
      const std::vector<double> t0 = time_alternating(g, ks, {&dense, &dense_csr}, samples);
      row("dense", dense, t0[0], t0[0]);
      row("100% csr", dense_csr, t0[1], t0[0]);
      for (const Case& c : cases) {
        const std::vector<int8_t> w = make_weights(K, N, c.kind, c.density, rng);
        const PackedLinear sp = pack_linear(w.data(), K, N, true);
        const std::vector<double> t = time_alternating(g, ks, {&dense, &sp}, samples);
        row(c.name, sp, t[1], t[0]);
      }
    }
    std::printf("\n");
  }

  // Crossover: the densest weights at which the sparse kernel still beats the dense one. The sparse kernel's cost
  // follows the non-zero quads, so the threshold the engine needs is a quad density; it is measured for
  // unstructured weights (quad density = 1 - (1 - d)^4) and for 1x4 blocks (quad density = d).
  std::printf("crossover: sparse time / dense time by weight density d (quad density q); '<' = sparse faster\n");
  const double unstructured_d[] = {0.30, 0.25, 0.20, 0.175, 0.15, 0.125, 0.10, 0.075, 0.05};
  const double blocks_d[] = {0.70, 0.60, 0.55, 0.50, 0.45, 0.40, 0.35, 0.30};
  const int sweep_shapes[][3] = {{128, 768, 768}, {384, 768, 768}, {384, 768, 2304}, {384, 768, 3072}, {384, 3072, 768}};
  for (const auto& s : sweep_shapes) {
    const int M = s[0], K = s[1], N = s[2];
    if (quick && M == 384 && N != 768) continue;
    Gemm g(M, K, N, Mt, rng);
    const std::vector<int8_t> wd = make_weights(K, N, Sparsity::dense, 1.0, rng);
    const PackedLinear dense = pack_linear(wd.data(), K, N, false);
    for (const Sparsity kind : {Sparsity::unstructured, Sparsity::blocks1x4}) {
      std::printf("M=%-4d %4dx%-5d %-6s", M, K, N, kind == Sparsity::unstructured ? "unstr" : "1x4");
      double cross_d = 0, cross_q = 0;
      bool won_all_sparser = true;
      const double* ds = kind == Sparsity::unstructured ? unstructured_d : blocks_d;
      const int nd = kind == Sparsity::unstructured ? 9 : 8;
      std::vector<double> ratio(nd);
      std::vector<double> qd(nd);
      for (int i = 0; i < nd; ++i) {
        const std::vector<int8_t> w = make_weights(K, N, kind, ds[i], rng);
        const PackedLinear sp = pack_linear(w.data(), K, N, true);
        const std::vector<double> t = time_alternating(g, ks, {&dense, &sp}, quick ? 3 : 5);
        ratio[i] = t[1] / t[0];
        qd[i] = sp.quad_density;
        std::printf(" %4.1f%%(q%2.0f%%)%c%.2f", 100 * ds[i], 100 * qd[i], ratio[i] < 1 ? '<' : ' ', ratio[i]);
      }
      // The densest point from which every sparser point is a win.
      for (int i = nd - 1; i >= 0 && won_all_sparser; --i) {
        if (ratio[i] < 1) {
          cross_d = ds[i];
          cross_q = qd[i];
        } else {
          won_all_sparser = false;
        }
      }
      if (cross_d > 0)
        std::printf("  -> sparse faster from d=%.1f%% (q=%.0f%%)\n", 100 * cross_d, 100 * cross_q);
      else
        std::printf("  -> sparse never faster in this range\n");
    }
  }
  return 0;
}
