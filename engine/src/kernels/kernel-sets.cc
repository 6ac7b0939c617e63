#include "kernels-internal.h"

namespace sbs {

const KernelSet& kernels_for(Isa isa) {
  using namespace kernels;
  static const KernelSet scalar{Isa::scalar, qu8s8_gemm_dense_scalar, qu8s8_spmm_scalar, qu8s8_spmm_ob4_scalar,
                                qu8s8_gemm_epilogue_scalar, u8_quantize_pack_row_scalar,
                                u8_quantize_pack_group_scalar, u8_planarize_tile_scalar};
#if SBS_KERNELS_X86
  static const KernelSet avx2{Isa::avx2, qu8s8_gemm_dense_avx2, qu8s8_spmm_avx2, qu8s8_spmm_ob4_avx2,
                              qu8s8_gemm_epilogue_avx2, u8_quantize_pack_row_avx2,
                              u8_quantize_pack_group_avx2, u8_planarize_tile_avx2};
  // AVX-VNNI only adds the dot product; its epilogue, quantizer and planarizer are the AVX2 ones.
  static const KernelSet avxvnni{Isa::avxvnni, qu8s8_gemm_dense_avxvnni, qu8s8_spmm_avxvnni,
                                 qu8s8_spmm_ob4_avxvnni, qu8s8_gemm_epilogue_avx2, u8_quantize_pack_row_avx2,
                                 u8_quantize_pack_group_avx2,
                                 u8_planarize_tile_avx2};
  static const KernelSet avx512vnni{Isa::avx512vnni, qu8s8_gemm_dense_avx512vnni, qu8s8_spmm_avx512vnni,
                                    qu8s8_spmm_ob4_avx512vnni, qu8s8_gemm_epilogue_avx512,
                                    u8_quantize_pack_row_avx512, u8_quantize_pack_group_avx512,
                                    u8_planarize_tile_avx512};
  switch (isa) {
    case Isa::scalar: return scalar;
    case Isa::avx2: return avx2;
    case Isa::avxvnni: return avxvnni;
    case Isa::avx512vnni: return avx512vnni;
  }
#endif
  return scalar;
}

}  // namespace sbs
