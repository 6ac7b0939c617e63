// One engine instance: a loaded model, its thread pool and scratch memory. Runs one batch at a time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model.h"
#include "ops/ops.h"
#include "thread-pool.h"

namespace sbs {

// A ragged batch: the tokens of all rows concatenated, row r being [offsets[r], offsets[r+1]).
struct Batch {
  std::vector<int32_t> ids, type_ids;  // type_ids empty: all zero
  std::vector<int32_t> offsets;        // rows + 1 entries, offsets[0] == 0
};

// Per-token outputs [tokens][labels] (QA: start and end planes [2][tokens]) or per-row [rows][labels].
struct BatchOutputs {
  std::vector<std::vector<float>> planes;
};

enum class Op { embeddings, quantize, gemm_qkv, attention, gemm_attention_output, layer_norm, gemm_intermediate,
                gelu, gemm_output, head, count };
const char* op_name(Op op);

struct EngineOptions {
  int threads = 1;
  Isa isa = Isa::scalar;
  PackOptions pack;
  bool avx512_ops = false;  // the AVX-512 attention / GELU / LayerNorm (else the portable ones)
  // Attention's two matrix products in int8 (VPDPBUSD) where the CPU has AVX512-VNNI and the head fits
  // (kernels/qu8s8-attention.h); otherwise fp32 (the ops' attention).
  bool int8_attention = true;
};

class Engine {
 public:
  Engine(ModelWeights model, const EngineOptions& options);
  ~Engine();

  // Throws std::invalid_argument naming the problem for a batch the model cannot take; checked before any work.
  void validate(const Batch& batch) const;
  // Runs a validated batch. Not reentrant: callers serialize (busy() guards the N-API layer).
  BatchOutputs run(const Batch& batch);

  const ModelSpec& spec() const { return model_.spec; }
  Isa isa() const { return kernels_.isa; }
  int threads() const { return pool_.size(); }
  const char* ops_name() const { return ops_.name; }
  const char* attention_name() const { return int8_attention_ ? "int8-avx512vnni" : ops_.name; }
  // Per linear kind: how many layers run on each kernel, and the mean densities packing measured.
  std::string describe_layers() const;
  // Every encoder linear in order (layer, name, kernel, measured densities).
  struct LinearReport {
    int layer;
    const char* name;
    const PackedLinear* packed;
  };
  std::vector<LinearReport> linears() const;
  // Seconds per operator type over every run so far, and the run count; safe to read while a run is going on.
  std::array<double, size_t(Op::count)> profile_seconds() const;
  uint64_t profiled_runs() const;
  std::atomic<bool>& busy() { return busy_; }

 private:
  struct Activations;  // packed u8 tiles + per-token scale and zero point
  void ensure_capacity(int tokens);
  void clear_tile_padding(int tokens, Activations& a);
  // Rows m0 .. m0 + count - 1 (one 16-token group, row stride ld) into the activation tiles.
  void quantize_group(const float* rows, int ld, int m0, int count, int tokens, Activations& a);
  void gemm(const QuantizedLinear& w, const std::vector<int>& split, Activations& a, int tokens, float* y, int ldy,
            const float* residual, int ld_residual);

  ModelWeights model_;
  const KernelSet& kernels_;
  OpSet ops_;
  ThreadPool pool_;
  mutable std::mutex profile_mutex_;
  std::array<double, size_t(Op::count)> op_seconds_{};  // guarded by profile_mutex_
  uint64_t profiled_runs_ = 0;                          // guarded by profile_mutex_
  std::atomic<bool> busy_{false};
  bool uses_out_blocks_ = false;
  bool int8_attention_ = false;
  // Channel splits per layer and linear (qkv, attention_output, intermediate, output), one range per thread.
  std::vector<std::array<std::vector<int>, 4>> splits_;

  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace sbs
