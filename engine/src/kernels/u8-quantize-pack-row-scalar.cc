#include "kernels-internal.h"

namespace sbs::kernels {

void u8_quantize_pack_row_scalar(const float* x, int K, uint8_t* tile, int Mt, int m, float* scale, int32_t* zero) {
  float lo = 0.0f, hi = 0.0f;
  for (int k = 0; k < K; ++k) {
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  const QuantParams qp = quant_params(lo, hi);
  const int Kq = (K + 3) / 4;
  for (int kq = 0; kq < Kq; ++kq) {
    uint8_t* dst = tile + (size_t(kq) * Mt + m) * 4;
    for (int j = 0; j < 4; ++j) {
      const int k = 4 * kq + j;
      // Integer add after the conversion, as the vector paths do (cvtps_epi32 then add_epi32).
      const int32_t q = k < K ? cvt_nearest_i32(x[k] * qp.inv_scale) + qp.zero : 0;
      dst[j] = uint8_t(std::min(255, std::max(0, q)));
    }
  }
  *scale = qp.scale;
  *zero = qp.zero;
}

void u8_quantize_pack_group_scalar(const float* x, int ldx, int count, int K, uint8_t* tile, int Mt, int m0,
                                   float* scale, int32_t* zero) {
  quantize_pack_group_by_rows<u8_quantize_pack_row_scalar>(x, ldx, count, K, tile, Mt, m0, scale, zero);
}

}  // namespace sbs::kernels
