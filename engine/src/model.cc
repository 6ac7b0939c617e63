#include "model.h"

#include <stdexcept>

namespace sbs {
namespace {

const char* type_name(TensorRef::Type type) { return type == TensorRef::Type::f32 ? "float32" : "int8"; }

class Loader {
 public:
  explicit Loader(const TensorLookup& lookup) : lookup_(lookup) {}

  bool has(const std::string& name) const {
    TensorRef ref;
    return lookup_(name, ref);
  }

  TensorRef get(const std::string& name, TensorRef::Type type, size_t length) const {
    TensorRef ref;
    if (!lookup_(name, ref)) throw std::runtime_error("weights: missing tensor " + name);
    if (ref.type != type)
      throw std::runtime_error("weights: " + name + " is " + type_name(ref.type) + ", expected " + type_name(type));
    if (ref.length != length)
      throw std::runtime_error("weights: " + name + " has " + std::to_string(ref.length) + " values, expected " +
                               std::to_string(length));
    if (length > 0 && ref.data == nullptr) throw std::runtime_error("weights: " + name + " has no data");
    return ref;
  }

  std::vector<float> floats(const std::string& name, size_t length) const {
    TensorRef ref = get(name, TensorRef::Type::f32, length);
    const float* p = static_cast<const float*>(ref.data);
    return std::vector<float>(p, p + length);
  }

  const int8_t* int8s(const std::string& name, size_t length) const {
    return static_cast<const int8_t*>(get(name, TensorRef::Type::s8, length).data);
  }

 private:
  const TensorLookup& lookup_;
};

LayerNormWeights layer_norm(const Loader& loader, const std::string& name, int hidden) {
  return {loader.floats(name + ".gamma", hidden), loader.floats(name + ".beta", hidden)};
}

QuantizedLinear quantized_linear(const Loader& loader, const std::string& name, int K, int N,
                                 const PackOptions& options) {
  const int8_t* w = loader.int8s(name + ".weight", size_t(K) * N);
  QuantizedLinear linear;
  linear.scale = loader.floats(name + ".scale", N);
  linear.bias = loader.floats(name + ".bias", N);
  for (float s : linear.scale)
    if (!(s > 0) || s != s) throw std::runtime_error("weights: " + name + ".scale holds a non-positive scale");
  const WeightDensities densities = measure_densities(w, K, N);
  const LinearKernel kernel = options.force_kernel ? options.forced : choose_kernel(densities, K, N, options.costs);
  linear.packed = pack_linear(w, K, N, kernel, &densities);
  return linear;
}

// Heads arrive in the ONNX MatMul layout [K][N]; they are stored transposed so each output is one contiguous dot.
FloatLinear float_linear(const Loader& loader, const std::string& name, int K, int N) {
  std::vector<float> kn = loader.floats(name + ".weight", size_t(K) * N);
  FloatLinear linear;
  linear.K = K;
  linear.N = N;
  linear.weight.resize(size_t(K) * N);
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) linear.weight[size_t(n) * K + k] = kn[size_t(k) * N + n];
  linear.bias = loader.floats(name + ".bias", N);
  return linear;
}

void check_spec(const ModelSpec& s) {
  auto positive = [](int value, const char* name, int limit) {
    if (value <= 0 || value > limit)
      throw std::runtime_error(std::string("spec: ") + name + " must be in 1.." + std::to_string(limit) + ", got " +
                               std::to_string(value));
  };
  positive(s.hidden, "hidden", 1 << 14);
  positive(s.layers, "layers", 256);
  positive(s.heads, "heads", 1024);
  positive(s.intermediate, "intermediate", 1 << 16);
  positive(s.vocab, "vocab", 1 << 22);
  positive(s.max_positions, "max_positions", 1 << 14);
  positive(s.labels, "labels", 1 << 16);
  if (s.type_vocab < 0 || s.type_vocab > 1024) throw std::runtime_error("spec: type_vocab must be in 0..1024");
  if (s.hidden % s.heads != 0) throw std::runtime_error("spec: hidden must be a multiple of heads");
  if (s.task == Task::question_answering && s.labels != 2)
    throw std::runtime_error("spec: question answering has 2 outputs per token");
  if (!(s.layer_norm_eps > 0)) throw std::runtime_error("spec: layer_norm_eps must be positive");
}

}  // namespace

ModelWeights load_model(const ModelSpec& spec, const TensorLookup& lookup, const PackOptions& options) {
  check_spec(spec);
  Loader loader(lookup);
  const int H = spec.hidden;
  ModelWeights m;
  m.spec = spec;
  const size_t table = size_t(spec.vocab) * H;
  if (loader.has("embeddings.word_scale")) {
    const int8_t* rows = loader.int8s("embeddings.word", table);
    m.word_s8.assign(rows, rows + table);
    m.word_scale = loader.floats("embeddings.word_scale", spec.vocab);
  } else {
    m.word_f32 = loader.floats("embeddings.word", table);
  }
  m.position = loader.floats("embeddings.position", size_t(spec.max_positions) * H);
  if (spec.type_vocab > 0) m.token_type = loader.floats("embeddings.token_type", size_t(spec.type_vocab) * H);
  m.embedding_norm = layer_norm(loader, "embeddings.norm", H);
  for (int l = 0; l < spec.layers; l++) {
    const std::string p = "layers." + std::to_string(l) + ".";
    EncoderLayerWeights layer;
    layer.qkv = quantized_linear(loader, p + "qkv", H, 3 * H, options);
    layer.attention_output = quantized_linear(loader, p + "attention_output", H, H, options);
    layer.attention_norm = layer_norm(loader, p + "attention_norm", H);
    layer.intermediate = quantized_linear(loader, p + "intermediate", H, spec.intermediate, options);
    layer.output = quantized_linear(loader, p + "output", spec.intermediate, H, options);
    layer.output_norm = layer_norm(loader, p + "output_norm", H);
    m.layers.push_back(std::move(layer));
  }
  if (spec.task == Task::sequence_classification) m.pooler = float_linear(loader, "head.pooler", H, H);
  m.head = float_linear(loader, "head.output", H, spec.labels);
  return m;
}

}  // namespace sbs
