#include "ops.h"

#include "kernels/kernels.h"

namespace sbs {

bool cpu_has_avx512_ops() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

OpSet select_ops(bool avx512) {
  // GELU: the f32-gelu kernels (one definition, the same bits on both paths).
  if (avx512) return {"avx512", layer_norm_row_avx512, kernels::f32_gelu_avx512, attention_head_avx512};
  return {"portable", layer_norm_row, kernels::f32_gelu_scalar, attention_head};
}

}  // namespace sbs
