#include "ops.h"
#include "vector-math.h"

namespace sbs {

SBS_OP_CLONES
void linear_rows(const float* weight, const float* bias, int K, int N, const float* x, float* y) {
  for (int j = 0; j < N; j++) y[j] = dot_lanes(weight + size_t(j) * K, x, K) + bias[j];
}

}  // namespace sbs
