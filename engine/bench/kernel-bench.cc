// Single-thread throughput of the tile GEMM kernels on BERT-Base shapes: dense, sparse quads (CSR of 4-input
// groups) and output blocks (tuples of 4 inputs per block of 4 output channels) on the same weights.
// Build: g++ -O3 -std=c++17 -Iengine/src engine/src/kernels/*.cc engine/bench/kernel-bench.cc -o kernel-bench
// Usage: kernel-bench [--isa scalar|avx2|avxvnni|avx512vnni] [--mt 16..128] [--quick]
//        kernel-bench --model dense|unstr|4in|4out [--density 0.1] [--m 128] [--mt 64] [--layers 12] [--isa NAME]:
//        the GEMMs of a whole BERT-Base forward pass (12 layers x qkv, attention_output, intermediate, output; each
//        layer its own weights, on the kernel the engine picks) in the engine's loop order, so that the packed
//        weights (tens of MB) stream from DRAM as in the real model.
//
// GMAC/s "effective" counts the dense M*N*K multiply-adds whatever the sparsity (what a user of the layer
// gets); "real" counts the products the kernel does (zeros inside a quad or a padded tuple included). The dense and sparse runs of one case alternate and each figure is the median of its samples, so
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

// blocks4in: 4 consecutive inputs of one output share their zeros (one quad); blocks4out: 4 consecutive outputs at
// one input (Intel's "1x4" Prune OFA pattern).
enum class Sparsity { dense, unstructured, blocks4in, blocks4out };

std::vector<int8_t> make_weights(int K, int N, Sparsity kind, double density, Rng& rng) {
  std::vector<int8_t> w(size_t(K) * N);
  if (kind == Sparsity::blocks4in) {
    for (int kq = 0; kq < (K + 3) / 4; ++kq)
      for (int n = 0; n < N; ++n) {
        const bool keep = rng.real() < density;
        for (int k = 4 * kq; k < std::min(K, 4 * kq + 4); ++k) w[size_t(k) * N + n] = keep ? rng.nonzero_s8() : 0;
      }
  } else if (kind == Sparsity::blocks4out) {
    for (int k = 0; k < K; ++k)
      for (int b = 0; b < (N + 3) / 4; ++b) {
        const bool keep = rng.real() < density;
        for (int n = 4 * b; n < std::min(N, 4 * b + 4); ++n) w[size_t(k) * N + n] = keep ? rng.nonzero_s8() : 0;
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

// One tile x 16-channel group with the kernel the weights were packed for.
void run_tile(const KernelSet& ks, const PackedLinear& w, const uint8_t* tile, const uint8_t* planar, int rows, int n0,
              int nc, int32_t* acc) {
  switch (w.kernel) {
    case LinearKernel::dense: return ks.dense_gemm(tile, rows, w.dense_view(), n0, nc, acc);
    case LinearKernel::sparse_quads: return ks.sparse_gemm(tile, rows, w.sparse_view(), n0, nc, acc);
    case LinearKernel::out_blocks: return ks.out_block_gemm(planar, rows, w.out_block_view(), n0, nc, acc);
  }
}

struct Gemm {
  int M, K, N, Mt;
  std::vector<AlignedBytes> tiles, planar;
  std::vector<int> tile_rows;
  std::vector<int32_t> acc = std::vector<int32_t>(size_t(kMaxTileRows) * kChannelGroup);

  Gemm(int M_, int K_, int N_, int Mt_, Rng& rng) : M(M_), K(K_), N(N_), Mt(Mt_) {
    std::vector<uint8_t> A(size_t(M) * K);
    for (auto& a : A) a = uint8_t(rng.next());
    for (int m0 = 0; m0 < M; m0 += Mt) {
      const int rows = std::min(Mt, M - m0), mt = (rows + 15) / 16 * 16;
      tiles.emplace_back(tile_bytes(K, mt));
      pack_tile(A.data(), K, m0, rows, mt, tiles.back().data());
      planar.emplace_back(planar_bytes((K + 3) / 4, mt));
      tile_rows.push_back(mt);
    }
  }
  // The engine's order: for each tile of tokens, every 16-channel group; the output-block kernel's planar tiles
  // are made from the packed ones first, as the engine does per GEMM.
  void run(const KernelSet& ks, const PackedLinear& w) {
    for (size_t t = 0; t < tiles.size(); ++t) {
      if (w.kernel == LinearKernel::out_blocks) ks.planarize(tiles[t].data(), tile_rows[t], (K + 3) / 4, planar[t].data());
      for (int n0 = 0; n0 < N; n0 += kChannelGroup)
        run_tile(ks, w, tiles[t].data(), planar[t].data(), tile_rows[t], n0, std::min(kChannelGroup, N - n0),
                 acc.data());
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
void engine_gemm(const KernelSet& ks, const PackedLinear& w, std::vector<AlignedBytes>& tiles,
                 std::vector<AlignedBytes>& planar, const std::vector<int>& rows, int32_t* acc) {
  const int groups = (w.N + kChannelGroup - 1) / kChannelGroup, nt = int(tiles.size());
  if (w.kernel == LinearKernel::out_blocks)
    for (int t = 0; t < nt; ++t) ks.planarize(tiles[t].p, rows[t], w.Kq, planar[t].p);
  for (int i = 0; i < groups * nt; ++i) {
    const int g = g_tiles_outer ? i % groups : i / nt, t = g_tiles_outer ? i / groups : i % nt;
    const int n0 = g * kChannelGroup, nc = std::min(kChannelGroup, w.N - n0);
    run_tile(ks, w, tiles[t].p, planar[t].p, rows[t], n0, nc, acc);
  }
}

const char* sparsity_name(Sparsity kind) {
  switch (kind) {
    case Sparsity::dense: return "dense";
    case Sparsity::unstructured: return "unstr";
    case Sparsity::blocks4in: return "4in";
    case Sparsity::blocks4out: return "4out";
  }
  return "?";
}

// The engine's choice for the weights (choose_kernel with its default costs), as at model load.
PackedLinear pack_as_engine(const std::vector<int8_t>& w, int K, int N) {
  return pack_linear(w.data(), K, N, choose_kernel(measure_densities(w.data(), K, N), K, N, KernelCosts{}));
}

int model_bench(const KernelSet& ks, Sparsity kind, double density, int M, int Mt, int layers) {
  Rng rng(7);
  const int H = 768, I = 3072;
  const int shapes[4][2] = {{H, 3 * H}, {H, H}, {H, I}, {I, H}};
  std::vector<PackedLinear> linears;
  size_t bytes = 0;
  double macs = 0;
  for (int l = 0; l < layers; ++l)
    for (const auto& s : shapes) {
      const std::vector<int8_t> w = make_weights(s[0], s[1], kind, density, rng);
      linears.push_back(pack_as_engine(w, s[0], s[1]));
      bytes += linears.back().packed_bytes();
      macs += double(M) * s[0] * s[1];
    }
  std::vector<std::vector<AlignedBytes>> tiles(2), planar(2);  // K = 768 and 3072
  std::vector<int> rows;
  for (int m0 = 0; m0 < M; m0 += Mt) rows.push_back((std::min(Mt, M - m0) + 15) / 16 * 16);
  for (int i = 0; i < 2; ++i) {
    const int K = i ? I : H;
    std::vector<uint8_t> A(size_t(M) * K);
    for (auto& a : A) a = uint8_t(rng.next());
    for (int m0 = 0, t = 0; m0 < M; m0 += Mt, ++t) {
      tiles[i].emplace_back(tile_bytes(K, rows[t]));
      pack_tile(A.data(), K, m0, std::min(Mt, M - m0), rows[t], tiles[i].back().data());
      planar[i].emplace_back(planar_bytes((K + 3) / 4, rows[t]));
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
      engine_gemm(ks, linears[i], tiles[linears[i].K == I], planar[linears[i].K == I], rows, acc.data());
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      t4[i % 4] += s;
      sum += s;
    }
    if (run < 2) continue;  // warm-up
    total.push_back(sum);
    for (int k = 0; k < 4; ++k) per_kind[k].push_back(t4[k]);
  }
  const double t = median(total);
  std::printf("model %s %.0f%% %d layers M=%d Mt=%d, kernel %s: packed weights %.1f MB; all GEMMs %.2f ms = %.0f eff "
              "GMAC/s single thread (qkv %.2f, attn_out %.2f, inter %.2f, out %.2f ms)\n",
              sparsity_name(kind), 100 * density, layers, M, Mt, linear_kernel_name(linears[0].kernel), bytes / 1e6,
              t * 1e3, macs / t / 1e9,
              median(per_kind[0]) * 1e3, median(per_kind[1]) * 1e3, median(per_kind[2]) * 1e3,
              median(per_kind[3]) * 1e3);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  int Mt = 64;
  bool quick = false;
  int model_m = 128, model_layers = 12;
  double model_density = 0.1;
  std::string model;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--mt" && i + 1 < argc) Mt = std::atoi(argv[++i]);
    else if (a == "--tiles-outer") g_tiles_outer = true;
    else if (a == "--layers" && i + 1 < argc) model_layers = std::atoi(argv[++i]);
    else if (a == "--m" && i + 1 < argc) model_m = std::atoi(argv[++i]);
    else if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--density" && i + 1 < argc) model_density = std::atof(argv[++i]);
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
  if (!model.empty()) {
    for (Sparsity kind : {Sparsity::dense, Sparsity::unstructured, Sparsity::blocks4in, Sparsity::blocks4out})
      if (model == sparsity_name(kind)) return model_bench(ks, kind, model_density, model_m, Mt, model_layers);
    std::fprintf(stderr, "--model takes dense, unstr, 4in or 4out\n");
    return 2;
  }
  const double ghz = measure_ghz();
  // Peak of one core: 2 VPDPBUSD per cycle x 64 MACs (zmm) or 32 (ymm); AVX2: 2 VPMADDWD x 16 (8 tokens x 4 k
  // take two of them); scalar: nominally 1.
  const double macs_per_cycle = isa == Isa::avx512vnni ? 128 : isa == Isa::avxvnni ? 64 : isa == Isa::avx2 ? 32 : 1;
  const double peak = macs_per_cycle * ghz;
  std::printf("isa %s, Mt %d (last tile rounded up to 16), single thread\n", isa_name(isa), Mt);
  std::printf("clock %.2f GHz measured (dependent-add chain; /proc/cpuinfo says %.0f MHz); peak %.0f GMAC/s "
              "(%.0f MAC/cycle)\n\n",
              ghz, cpuinfo_mhz(), peak, macs_per_cycle);

  const Case cases[] = {{"unstr 20%", Sparsity::unstructured, 0.2}, {"unstr 10%", Sparsity::unstructured, 0.1},
                        {"4in 20%", Sparsity::blocks4in, 0.2},      {"4in 10%", Sparsity::blocks4in, 0.1},
                        {"4out 20%", Sparsity::blocks4out, 0.2},    {"4out 10%", Sparsity::blocks4out, 0.1}};
  const int shapes[][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
  const int samples = quick ? 5 : 9;
  Rng rng(42);

  // Each case times dense, sparse quads and output blocks alternately. "cost/unit" is the time relative to dense
  // divided by the kernel's share of dense work (quad density; output blocks: tuples x 4 / K): the constants of
  // KernelCosts, which choose_kernel uses to pick a kernel from the weights.
  std::printf("%-5s %-10s %-10s %-17s %6s %9s %6s %10s %8s %9s %8s %s\n", "M", "K x N", "weights", "kernel", "work",
              "effGMAC/s", "%peak", "realGMAC/s", "vs dense", "cost/unit", "ms", "engine picks");
  for (int M : {128, 384}) {
    for (const auto& s : shapes) {
      const int K = s[0], N = s[1];
      Gemm g(M, K, N, Mt, rng);
      const double macs = double(M) * K * N;
      const std::vector<int8_t> wd = make_weights(K, N, Sparsity::dense, 1.0, rng);
      const PackedLinear dense = pack_linear(wd.data(), K, N, LinearKernel::dense);
      char shape[32];
      std::snprintf(shape, sizeof shape, "%dx%d", K, N);
      auto row = [&](const char* label, const PackedLinear& w, double t, double t_dense, const char* pick) {
        double work = 1.0;
        if (w.kernel == LinearKernel::sparse_quads) work = double(w.kq.size()) / (double(w.Kq) * N);
        if (w.kernel == LinearKernel::out_blocks) work = double(w.block_w.size()) / (double(w.Kq) * ((N + 3) / 4 * 4));
        const double real = macs * work;
        std::printf("%-5d %-10s %-10s %-17s %5.1f%% %9.1f %5.1f%% %10.1f %7.2fx %9.2f %8.3f %s\n", M, shape, label,
                    linear_kernel_name(w.kernel), 100 * work, macs / t / 1e9, 100 * macs / t / 1e9 / peak,
                    real / t / 1e9, t_dense / t, t / t_dense / work, t * 1e3, pick);
      };
      const std::vector<double> t0 = time_alternating(g, ks, {&dense}, samples);
      row("dense", dense, t0[0], t0[0], "");
      for (const Case& c : cases) {
        const std::vector<int8_t> w = make_weights(K, N, c.kind, c.density, rng);
        const PackedLinear quads = pack_linear(w.data(), K, N, LinearKernel::sparse_quads);
        const PackedLinear blocks = pack_linear(w.data(), K, N, LinearKernel::out_blocks);
        const std::vector<double> t = time_alternating(g, ks, {&dense, &quads, &blocks}, samples);
        const LinearKernel pick = choose_kernel(quads.densities, K, N, KernelCosts{});
        row(c.name, quads, t[1], t[0], pick == LinearKernel::sparse_quads ? "<-" : "");
        row(c.name, blocks, t[2], t[0], pick == LinearKernel::out_blocks ? "<-" : "");
      }
    }
    std::printf("\n");
  }

  // Crossover: the densest weights at which the sparse kernel still beats the dense one. The sparse kernel's cost
  // follows the non-zero quads, so the threshold the engine needs is a quad density; it is measured for
  // unstructured weights (quad density = 1 - (1 - d)^4) and for 4-input blocks (quad density = d).
  std::printf("crossover: sparse time / dense time by weight density d (quad density q); '<' = sparse faster\n");
  const double unstructured_d[] = {0.30, 0.25, 0.20, 0.175, 0.15, 0.125, 0.10, 0.075, 0.05};
  const double blocks_d[] = {0.70, 0.60, 0.55, 0.50, 0.45, 0.40, 0.35, 0.30};
  const int sweep_shapes[][3] = {{128, 768, 768}, {384, 768, 768}, {384, 768, 2304}, {384, 768, 3072}, {384, 3072, 768}};
  for (const auto& s : sweep_shapes) {
    const int M = s[0], K = s[1], N = s[2];
    if (quick && M == 384 && N != 768) continue;
    Gemm g(M, K, N, Mt, rng);
    const std::vector<int8_t> wd = make_weights(K, N, Sparsity::dense, 1.0, rng);
    const PackedLinear dense = pack_linear(wd.data(), K, N, LinearKernel::dense);
    for (const Sparsity kind : {Sparsity::unstructured, Sparsity::blocks4in}) {
      std::printf("M=%-4d %4dx%-5d %-6s", M, K, N, sparsity_name(kind));
      double cross_d = 0, cross_q = 0;
      bool won_all_sparser = true;
      const double* ds = kind == Sparsity::unstructured ? unstructured_d : blocks_d;
      const int nd = kind == Sparsity::unstructured ? 9 : 8;
      std::vector<double> ratio(nd);
      std::vector<double> qd(nd);
      for (int i = 0; i < nd; ++i) {
        const std::vector<int8_t> w = make_weights(K, N, kind, ds[i], rng);
        const PackedLinear sp = pack_linear(w.data(), K, N, LinearKernel::sparse_quads);
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
