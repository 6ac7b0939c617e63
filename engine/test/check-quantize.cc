// Kernel tester: the GEMM epilogue, quantize_pack_row / quantize_pack_group of every ISA against the scalar ones, and
// the work split between threads.
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

// ---- epilogue ----


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

}  // namespace sbs::tester
