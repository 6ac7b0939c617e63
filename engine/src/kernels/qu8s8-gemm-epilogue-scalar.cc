#include "kernels-internal.h"

namespace sbs::kernels {

void qu8s8_gemm_epilogue_scalar(const int32_t* acc, int rows, int nc, const EpilogueParams& p, float* y, int ldy) {
  for (int m = 0; m < rows; ++m) {
    const int32_t* a = acc + m * kChannelGroup;
    float* out = y + size_t(m) * ldy;
    for (int c = 0; c < nc; ++c) {
      const float scale = p.a_scale[m] * p.w_scale[c];
      float v = std::fmaf(float(a[c] - p.a_zero[m] * p.w_sum[c]), scale, p.bias[c]);
      if (p.residual) v += p.residual[size_t(m) * p.ld_residual + c];
      out[c] = v;
    }
  }
}

}  // namespace sbs::kernels
