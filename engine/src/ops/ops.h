// The engine's non-GEMM operators, each on one token row (or one row x head), so work splits across threads by
// token and a token's result never depends on the other rows of the batch.
#pragma once

#include <cstdint>

namespace sbs {

// out = LayerNorm(x) over n values (biased variance, eps inside the square root); out may alias x.
void layer_norm_row(const float* x, const float* gamma, const float* beta, int n, float eps, float* out);

// x = relu(x), in place (GELU: kernels::f32_gelu_*).
void relu_row(float* x, int n);

// out = word + position + token_type (any of the last two may be null); word given as int8 row * scale or fp32.
void embed_row(const int8_t* word_s8, float word_scale, const float* word_f32, const float* position,
               const float* token_type, int n, float* out);

// One head of attention for one row of L tokens. q/k/v point at the row's first token's head slice inside the
// fused QKV matrix (row stride ld); ctx likewise (row stride ldc). scratch holds head_dim * ceil16(L) + 4 * ceil16(L)
// floats.
void attention_head(const float* q, const float* k, const float* v, int ld, int L, int head_dim, float* ctx, int ldc,
                    float* scratch);
inline int attention_scratch_floats(int max_len, int head_dim) {
  int padded = (max_len + 15) / 16 * 16;
  return padded * (head_dim + 4);
}

// AVX-512 versions (call only when the CPU has AVX-512F/BW/VL/DQ).
void layer_norm_row_avx512(const float* x, const float* gamma, const float* beta, int n, float eps, float* out);
void attention_head_avx512(const float* q, const float* k, const float* v, int ld, int L, int head_dim, float* ctx,
                           int ldc, float* scratch);

// The operator implementations one engine uses, chosen once from the CPU's features.
struct OpSet {
  const char* name;
  void (*layer_norm_row)(const float*, const float*, const float*, int, float, float*);
  void (*gelu_row)(float*, int);
  void (*attention_head)(const float*, const float*, const float*, int, int, int, float*, int, float*);
};
OpSet select_ops(bool avx512);
bool cpu_has_avx512_ops();

// y[n] = dot(weight[n], x) + bias[n] for n < N (weight rows contiguous, K long).
void linear_rows(const float* weight, const float* bias, int K, int N, const float* x, float* y);

}  // namespace sbs
