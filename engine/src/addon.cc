// The N-API surface of the engine. Every entry point converts C++ exceptions into JavaScript errors
// (NODE_ADDON_API_CPP_EXCEPTIONS_ALL is the safety net; load and input errors are caught and named here).
#include <napi.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "engine.h"

namespace sbs {
namespace {

Task parse_task(const std::string& task) {
  if (task == "question-answering") return Task::question_answering;
  if (task == "text-classification") return Task::sequence_classification;
  if (task == "token-classification") return Task::token_classification;
  throw std::invalid_argument("spec.task: unknown task \"" + task + "\"");
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni})
    if (name == isa_name(isa)) {
      if (!isa_supported(isa)) throw std::invalid_argument("options.isa: this CPU cannot run " + name);
      return isa;
    }
  throw std::invalid_argument("options.isa: unknown kernel path \"" + name + "\"");
}

int int_field(const Napi::Object& object, const char* owner, const char* key) {
  Napi::Value value = object.Get(key);
  if (!value.IsNumber()) throw std::invalid_argument(std::string(owner) + "." + key + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (number != double(int64_t(number)) || number < 0 || number > 2147483647.0)
    throw std::invalid_argument(std::string(owner) + "." + key + " must be a non-negative integer");
  return int(number);
}

std::string string_field(const Napi::Object& object, const char* owner, const char* key, const char* fallback) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined() && fallback) return fallback;
  if (!value.IsString()) throw std::invalid_argument(std::string(owner) + "." + key + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

ModelSpec parse_spec(const Napi::Object& o) {
  ModelSpec s;
  s.task = parse_task(string_field(o, "spec", "task", nullptr));
  s.hidden = int_field(o, "spec", "hidden");
  s.layers = int_field(o, "spec", "layers");
  s.heads = int_field(o, "spec", "heads");
  s.intermediate = int_field(o, "spec", "intermediate");
  s.vocab = int_field(o, "spec", "vocab");
  s.max_positions = int_field(o, "spec", "maxPositions");
  s.type_vocab = int_field(o, "spec", "typeVocab");
  s.labels = int_field(o, "spec", "labels");
  Napi::Value eps = o.Get("layerNormEps");
  if (!eps.IsNumber()) throw std::invalid_argument("spec.layerNormEps must be a number");
  s.layer_norm_eps = eps.As<Napi::Number>().FloatValue();
  std::string activation = string_field(o, "spec", "activation", "gelu");
  if (activation != "gelu" && activation != "relu") throw std::invalid_argument("spec.activation: gelu or relu");
  s.activation = activation == "gelu" ? Activation::gelu : Activation::relu;
  std::string pooler = string_field(o, "spec", "poolerActivation", "tanh");
  if (pooler != "tanh" && pooler != "relu") throw std::invalid_argument("spec.poolerActivation: tanh or relu");
  s.pooler_activation = pooler == "tanh" ? PoolerActivation::tanh : PoolerActivation::relu;
  return s;
}

std::vector<int32_t> int32_copy(const Napi::Value& value, const char* name, bool optional) {
  if (optional && (value.IsUndefined() || value.IsNull())) return {};
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw std::invalid_argument(std::string(name) + " must be an Int32Array");
  Napi::Int32Array array = value.As<Napi::Int32Array>();
  return std::vector<int32_t>(array.Data(), array.Data() + array.ElementLength());
}

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Engine> engine, Batch batch)
      : Napi::AsyncWorker(env, "sbs.engine.run"),
        deferred_(Napi::Promise::Deferred::New(env)),
        engine_(std::move(engine)),
        batch_(std::move(batch)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      outputs_ = engine_->run(batch_);
    } catch (const std::bad_alloc&) {
      SetError("engine: out of memory for a batch of " + std::to_string(batch_.ids.size()) + " tokens");
    } catch (const std::exception& e) {
      SetError(std::string("engine: ") + e.what());
    }
    engine_->busy().store(false);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array planes = Napi::Array::New(env, outputs_.planes.size());
    for (size_t i = 0; i < outputs_.planes.size(); i++) {
      const auto& plane = outputs_.planes[i];
      Napi::Float32Array array = Napi::Float32Array::New(env, plane.size());
      std::copy(plane.begin(), plane.end(), array.Data());
      planes.Set(uint32_t(i), array);
    }
    deferred_.Resolve(planes);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Engine> engine_;
  Batch batch_;
  BatchOutputs outputs_;
};

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod("run", &EngineWrap::Run), InstanceMethod("info", &EngineWrap::Info),
                        InstanceMethod("profile", &EngineWrap::Profile), InstanceMethod("dispose", &EngineWrap::Dispose)});
  }

  // new Engine(spec, tensors: Record<string, Float32Array | Int8Array>, options: {threads, isa?, sparseMaxQuadDensity?})
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    try {
      if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject() || !info[2].IsObject())
        throw std::invalid_argument("new Engine(spec, tensors, options): three objects expected");
      ModelSpec spec = parse_spec(info[0].As<Napi::Object>());
      Napi::Object tensors = info[1].As<Napi::Object>();
      Napi::Object o = info[2].As<Napi::Object>();
      EngineOptions options;
      options.threads = int_field(o, "options", "threads");
      if (options.threads < 1 || options.threads > 256) throw std::invalid_argument("options.threads must be 1..256");
      options.isa = o.Get("isa").IsUndefined() ? best_isa() : parse_isa(string_field(o, "options", "isa", nullptr));
      options.avx512_ops = cpu_has_avx512_ops();
      Napi::Value ops = o.Get("ops");
      if (!ops.IsUndefined()) {
        std::string name = string_field(o, "options", "ops", nullptr);
        if (name != "avx512" && name != "portable") throw std::invalid_argument("options.ops: avx512 or portable");
        if (name == "avx512" && !options.avx512_ops) throw std::invalid_argument("options.ops: this CPU has no AVX-512");
        options.avx512_ops = name == "avx512";
      }
      if (!o.Get("attention").IsUndefined()) {
        const std::string name = string_field(o, "options", "attention", nullptr);
        if (name != "int8" && name != "fp32") throw std::invalid_argument("options.attention: int8 or fp32");
        options.int8_attention = name == "int8";
      }
      if (!o.Get("linearKernel").IsUndefined()) {
        const std::string name = string_field(o, "options", "linearKernel", nullptr);
        bool known = name == "auto";
        for (LinearKernel k : {LinearKernel::dense, LinearKernel::sparse_quads, LinearKernel::out_blocks})
          if (name == linear_kernel_name(k)) options.pack.force_kernel = known = true, options.pack.forced = k;
        if (!known)
          throw std::invalid_argument("options.linearKernel: auto, dense, sparse-quads or sparse-out-blocks, got \"" +
                                      name + "\"");
      }
      TensorLookup lookup = [&](const std::string& name, TensorRef& out) {
        Napi::Value value = tensors.Get(name);
        if (value.IsUndefined()) return false;
        if (!value.IsTypedArray()) throw std::invalid_argument("weights: " + name + " must be a typed array");
        Napi::TypedArray array = value.As<Napi::TypedArray>();
        if (array.TypedArrayType() == napi_float32_array) {
          out = {TensorRef::Type::f32, array.As<Napi::Float32Array>().Data(), array.ElementLength()};
        } else if (array.TypedArrayType() == napi_int8_array) {
          out = {TensorRef::Type::s8, array.As<Napi::Int8Array>().Data(), array.ElementLength()};
        } else {
          throw std::invalid_argument("weights: " + name + " must be a Float32Array or an Int8Array");
        }
        return true;
      };
      engine_ = std::make_shared<Engine>(load_model(spec, lookup, options.pack), options);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  std::shared_ptr<Engine> live(Napi::Env env) {
    if (!engine_) throw Napi::Error::New(env, "engine: disposed");
    return engine_;
  }

  // run(ids: Int32Array, typeIds: Int32Array | null, offsets: Int32Array): Promise<Float32Array[]>
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto reject = [&](const std::string& message) {
      auto deferred = Napi::Promise::Deferred::New(env);
      deferred.Reject(Napi::Error::New(env, message).Value());
      return deferred.Promise();
    };
    if (!engine_) return reject("engine: disposed");
    Batch batch;
    try {
      batch.ids = int32_copy(info[0], "ids", false);
      batch.type_ids = int32_copy(info[1], "typeIds", true);
      batch.offsets = int32_copy(info[2], "offsets", false);
      engine_->validate(batch);
    } catch (const std::exception& e) {
      return reject(std::string("engine: ") + e.what());
    }
    bool expected = false;
    if (!engine_->busy().compare_exchange_strong(expected, true))
      return reject("engine: busy (one run at a time per engine instance)");
    auto* worker = new RunWorker(env, engine_, std::move(batch));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto engine = live(env);
    Napi::Object out = Napi::Object::New(env);
    out.Set("isa", isa_name(engine->isa()));
    out.Set("threads", engine->threads());
    out.Set("ops", engine->ops_name());
    out.Set("attention", engine->attention_name());
    out.Set("layers", engine->describe_layers());
    Napi::Array linears = Napi::Array::New(env);
    uint32_t i = 0;
    for (const Engine::LinearReport& r : engine->linears()) {
      Napi::Object linear = Napi::Object::New(env);
      linear.Set("layer", r.layer);
      linear.Set("name", r.name);
      linear.Set("kernel", linear_kernel_name(r.packed->kernel));
      Napi::Object densities = Napi::Object::New(env);
      densities.Set("weights", r.packed->densities.weights);
      densities.Set("quads", r.packed->densities.quads);
      densities.Set("outputBlocks", r.packed->densities.out_blocks);
      linear.Set("densities", densities);
      linear.Set("packedBytes", double(r.packed->packed_bytes()));
      linears.Set(i++, linear);
    }
    out.Set("linears", linears);
    return out;
  }

  Napi::Value Profile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto engine = live(env);
    Napi::Object seconds = Napi::Object::New(env);
    auto profile = engine->profile_seconds();
    for (size_t op = 0; op < profile.size(); op++) seconds.Set(op_name(Op(op)), profile[op]);
    Napi::Object out = Napi::Object::New(env);
    out.Set("runs", double(engine->profiled_runs()));
    out.Set("seconds", seconds);
    return out;
  }

  // Frees the weights now rather than at garbage collection; a run in flight keeps them until it ends.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    engine_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Engine> engine_;
};

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("best", isa_name(best_isa()));
  Napi::Array supported = Napi::Array::New(env);
  uint32_t i = 0;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni})
    if (isa_supported(isa)) supported.Set(i++, isa_name(isa));
  out.Set("supported", supported);
  out.Set("ops", cpu_has_avx512_ops() ? "avx512" : "portable");
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Define(env));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo));
  return exports;
}

}  // namespace
}  // namespace sbs

static Napi::Object InitEngineAddon(Napi::Env env, Napi::Object exports) { return sbs::Init(env, exports); }
NODE_API_MODULE(sbs_engine, InitEngineAddon)
