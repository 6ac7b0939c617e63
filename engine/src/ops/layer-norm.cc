#include <cmath>

#include "ops.h"
#include "vector-math.h"

namespace sbs {

SBS_OP_CLONES
void layer_norm_row(const float* x, const float* gamma, const float* beta, int n, float eps, float* out) {
  float mean = sum_lanes(x, n) / float(n);
  float lanes[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; l++) {
      float d = x[i + l] - mean;
      lanes[l] += d * d;
    }
  for (int l = 0; i + l < n; l++) {
    float d = x[i + l] - mean;
    lanes[l] += d * d;
  }
  float variance = combine_lanes(lanes) / float(n);
  float inv = 1.0f / std::sqrt(variance + eps);
  for (int j = 0; j < n; j++) out[j] = (x[j] - mean) * inv * gamma[j] + beta[j];
}

}  // namespace sbs
