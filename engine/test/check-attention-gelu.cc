// Kernel tester: int8 attention and GELU, every vector path bit-exact with its scalar reference, and the scalar ones
// within their stated error of fp64 attention and the exact erf GELU.
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

// ---- int8 attention ----

// fp64 attention of one head (the float definition the int8 kernels approximate).
namespace {

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

}  // namespace

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

}  // namespace sbs::tester
