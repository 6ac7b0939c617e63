#include "ops.h"
#include "vector-math.h"

namespace sbs {

SBS_OP_CLONES
void relu_row(float* x, int n) {
  for (int i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.0f;
}

}  // namespace sbs
