#include "ops.h"
#include "vector-math.h"

namespace sbs {

SBS_OP_CLONES
void embed_row(const int8_t* word_s8, float word_scale, const float* word_f32, const float* position,
               const float* token_type, int n, float* out) {
  if (word_s8)
    for (int i = 0; i < n; i++) out[i] = float(word_s8[i]) * word_scale;
  else
    for (int i = 0; i < n; i++) out[i] = word_f32[i];
  if (position)
    for (int i = 0; i < n; i++) out[i] += position[i];
  if (token_type)
    for (int i = 0; i < n; i++) out[i] += token_type[i];
}

}  // namespace sbs
