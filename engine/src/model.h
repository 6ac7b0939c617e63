// The weights of one BERT / DistilBERT encoder with its task head, validated and packed for the kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace sbs {

enum class Task { question_answering, sequence_classification, token_classification };
enum class Activation { gelu, relu };
enum class PoolerActivation { tanh, relu };

struct ModelSpec {
  Task task = Task::question_answering;
  int hidden = 0, layers = 0, heads = 0, intermediate = 0;
  int vocab = 0, max_positions = 0, type_vocab = 0;  // type_vocab 0: no token types (DistilBERT)
  int labels = 0;                                    // outputs per token (QA: 2) or per row
  float layer_norm_eps = 1e-12f;
  Activation activation = Activation::gelu;
  PoolerActivation pooler_activation = PoolerActivation::tanh;  // BERT: tanh; DistilBERT: relu
};

// One tensor as handed over by the caller; the loader copies what it keeps.
struct TensorRef {
  enum class Type { f32, s8 } type;
  const void* data;
  size_t length;
};
// Looks a tensor up by name; returns false when absent.
using TensorLookup = std::function<bool(const std::string& name, TensorRef& out)>;

struct LayerNormWeights {
  std::vector<float> gamma, beta;
};

struct QuantizedLinear {
  PackedLinear packed;
  std::vector<float> scale, bias;  // [N]
};

struct EncoderLayerWeights {
  QuantizedLinear qkv, attention_output, intermediate, output;
  LayerNormWeights attention_norm, output_norm;
};

// fp32 linear stored [N][K] (one contiguous row per output), for the heads.
struct FloatLinear {
  int K = 0, N = 0;
  std::vector<float> weight, bias;
};

struct ModelWeights {
  ModelSpec spec;
  std::vector<int8_t> word_s8;     // [vocab][hidden] with word_scale, or
  std::vector<float> word_scale;   // empty when the table is fp32
  std::vector<float> word_f32;
  std::vector<float> position, token_type;  // [max_positions][hidden], [type_vocab][hidden]
  LayerNormWeights embedding_norm;
  std::vector<EncoderLayerWeights> layers;
  FloatLinear pooler, head;        // pooler only for sequence classification
};

struct PackOptions {
  // Each linear runs on the kernel choose_kernel() estimates fastest for its weights, unless one is forced (tests
  // and benchmarks compare kernels on the same model this way; outputs are bit-identical on every kernel).
  KernelCosts costs;
  bool force_kernel = false;
  LinearKernel forced = LinearKernel::dense;
};

// Validates every tensor's presence, type and length against the spec and packs the encoder linears.
// Throws std::runtime_error naming the tensor on any mismatch.
ModelWeights load_model(const ModelSpec& spec, const TensorLookup& lookup, const PackOptions& options);

}  // namespace sbs
