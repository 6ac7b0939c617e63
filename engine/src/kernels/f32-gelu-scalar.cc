// Portable GELU over a row (f32-gelu.h); the definition the vector kernels match bit-exactly.
#include "f32-gelu.h"
#include "kernels-internal.h"

namespace sbs::kernels {

void f32_gelu_scalar(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = gelu_scalar(x[i]);
}

}  // namespace sbs::kernels
