#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "aligned-buffer.h"
#include "ops/ops.h"

namespace sbs {
namespace {

// Tokens per activation tile: each weight quad loaded feeds up to 64 tokens of dot products.
constexpr int kTileRows = 64;
// The largest batch the engine takes; memory grows linearly with it (intermediate activations are tokens x 3072).
constexpr int kMaxBatchTokens = 1 << 16;
// Tokens per task for per-token ops: one 16-token group of a tile, whose quad rows are 64-byte lines that
// quantize_pack_group writes whole (no two threads share a line); also amortizes handing out a task.
constexpr int kTokensPerTask = 16;

int ceil16(int n) { return (n + 15) / 16 * 16; }

class OpTimer {
 public:
  OpTimer(std::array<double, size_t(Op::count)>& seconds, Op op)
      : seconds_(seconds), op_(op), start_(std::chrono::steady_clock::now()) {}
  ~OpTimer() {
    seconds_[size_t(op_)] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::array<double, size_t(Op::count)>& seconds_;
  Op op_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

const char* op_name(Op op) {
  static const char* const names[] = {"embeddings",   "quantize",   "gemm_qkv",          "attention",
                                      "gemm_attention_output",      "layer_norm",        "gemm_intermediate",
                                      "gelu",         "gemm_output", "head"};
  return names[size_t(op)];
}

struct Engine::Activations {
  int K = 0, Kq = 0;
  AlignedBuffer<uint8_t> tiles;
  AlignedBuffer<uint8_t> planar;  // the output-block kernel's layout of the same tiles, made per GEMM that needs it
  std::vector<float> scale;
  std::vector<int32_t> zero;
  size_t tile_bytes() const { return size_t(kTileRows) * Kq * 4; }
  uint8_t* tile(int t) { return tiles.data() + size_t(t) * tile_bytes(); }
  const uint8_t* tile(int t) const { return tiles.data() + size_t(t) * tile_bytes(); }
  uint8_t* planar_tile(int t) { return planar.data() + size_t(t) * tile_bytes(); }
};

struct Engine::Scratch {
  int capacity = 0;
  AlignedBuffer<float> x, qkv, ctx, x2, inner;
  Activations hidden_q, inner_q;
  std::vector<int32_t> position;  // per token
  std::vector<AlignedBuffer<float>> attention;  // per thread
};

Engine::Engine(ModelWeights model, const EngineOptions& options)
    : model_(std::move(model)),
      kernels_(kernels_for(isa_supported(options.isa) ? options.isa : Isa::scalar)),
      ops_(select_ops(options.avx512_ops && cpu_has_avx512_ops())),
      pool_(options.threads),
      scratch_(std::make_unique<Scratch>()) {
  for (const auto& layer : model_.layers) {
    splits_.push_back({split_channels(layer.qkv.packed, pool_.size()),
                       split_channels(layer.attention_output.packed, pool_.size()),
                       split_channels(layer.intermediate.packed, pool_.size()),
                       split_channels(layer.output.packed, pool_.size())});
  }
  const int head_dim = model_.spec.hidden / model_.spec.heads;
  int8_attention_ = options.int8_attention && isa_supported(Isa::avx512vnni) && head_dim % 16 == 0 &&
                    head_dim <= kMaxInt8AttentionHeadDim;
  const size_t int8_floats = (attention_qu8s8_scratch_bytes(model_.spec.max_positions, head_dim) + 3) / 4;
  scratch_->attention.resize(pool_.size());
  for (auto& buffer : scratch_->attention)
    buffer.reserve_discard(
        std::max(size_t(attention_scratch_floats(model_.spec.max_positions, head_dim)), int8_floats));
  scratch_->hidden_q.K = model_.spec.hidden;
  scratch_->hidden_q.Kq = (model_.spec.hidden + 3) / 4;
  scratch_->inner_q.K = model_.spec.intermediate;
  scratch_->inner_q.Kq = (model_.spec.intermediate + 3) / 4;
  for (const LinearReport& r : linears()) uses_out_blocks_ |= r.packed->kernel == LinearKernel::out_blocks;
}

Engine::~Engine() = default;

std::array<double, size_t(Op::count)> Engine::profile_seconds() const {
  std::lock_guard<std::mutex> lock(profile_mutex_);
  return op_seconds_;
}

uint64_t Engine::profiled_runs() const {
  std::lock_guard<std::mutex> lock(profile_mutex_);
  return profiled_runs_;
}

void Engine::validate(const Batch& batch) const {
  const ModelSpec& s = model_.spec;
  const auto& offsets = batch.offsets;
  if (offsets.size() < 2) throw std::invalid_argument("offsets: a batch needs at least one row");
  if (offsets[0] != 0) throw std::invalid_argument("offsets: the first offset must be 0");
  for (size_t r = 1; r < offsets.size(); r++) {
    int64_t length = int64_t(offsets[r]) - offsets[r - 1];
    if (length <= 0)
      throw std::invalid_argument("offsets: row " + std::to_string(r - 1) + " is empty (offsets must increase)");
    if (length > s.max_positions)
      throw std::invalid_argument("offsets: row " + std::to_string(r - 1) + " has " + std::to_string(length) +
                                  " tokens, the model's position table holds " + std::to_string(s.max_positions));
  }
  if (size_t(offsets.back()) != batch.ids.size())
    throw std::invalid_argument("offsets: the last offset is " + std::to_string(offsets.back()) + " but there are " +
                                std::to_string(batch.ids.size()) + " token ids");
  if (batch.ids.size() > size_t(kMaxBatchTokens))
    throw std::invalid_argument("ids: " + std::to_string(batch.ids.size()) + " tokens in one batch, the limit is " +
                                std::to_string(kMaxBatchTokens));
  for (size_t i = 0; i < batch.ids.size(); i++)
    if (batch.ids[i] < 0 || batch.ids[i] >= s.vocab)
      throw std::invalid_argument("ids: token id " + std::to_string(batch.ids[i]) + " at position " +
                                  std::to_string(i) + " is outside the vocabulary (0.." + std::to_string(s.vocab - 1) +
                                  ")");
  if (!batch.type_ids.empty()) {
    if (batch.type_ids.size() != batch.ids.size())
      throw std::invalid_argument("typeIds: " + std::to_string(batch.type_ids.size()) + " values for " +
                                  std::to_string(batch.ids.size()) + " tokens");
    const int limit = std::max(1, s.type_vocab);
    for (size_t i = 0; i < batch.type_ids.size(); i++)
      if (batch.type_ids[i] < 0 || batch.type_ids[i] >= limit)
        throw std::invalid_argument("typeIds: token type " + std::to_string(batch.type_ids[i]) + " at position " +
                                    std::to_string(i) + " is outside 0.." + std::to_string(limit - 1));
  }
}

void Engine::ensure_capacity(int tokens) {
  Scratch& s = *scratch_;
  if (tokens <= s.capacity) return;
  const ModelSpec& m = model_.spec;
  const size_t n = size_t(tokens);
  s.x.reserve_discard(n * m.hidden);
  s.qkv.reserve_discard(n * 3 * m.hidden);
  s.ctx.reserve_discard(n * m.hidden);
  s.x2.reserve_discard(n * m.hidden);
  s.inner.reserve_discard(n * m.intermediate);
  const size_t tiles = (n + kTileRows - 1) / kTileRows;
  for (Activations* a : {&s.hidden_q, &s.inner_q}) {
    a->tiles.reserve_discard(tiles * a->tile_bytes());
    // A 64-token planar tile has the packed tile's size (Kq * 4 rows of 64 bytes).
    if (uses_out_blocks_) a->planar.reserve_discard(tiles * a->tile_bytes());
    a->scale.resize(n);
    a->zero.resize(n);
  }
  s.position.resize(n);
  s.capacity = tokens;
}

void Engine::clear_tile_padding(int tokens, Activations& a) {
  // The padded tokens of the last tile are multiplied too (their results are dropped): keep them defined.
  const int tiles = (tokens + kTileRows - 1) / kTileRows;
  const int last_rows = tokens - (tiles - 1) * kTileRows;
  if (last_rows < ceil16(last_rows)) std::memset(a.tile(tiles - 1), 0, size_t(ceil16(last_rows)) * a.Kq * 4);
}

void Engine::quantize_group(const float* rows, int ld, int m0, int count, int tokens, Activations& a) {
  const int t = m0 / kTileRows;
  const int tile_rows = std::min(kTileRows, tokens - t * kTileRows);
  kernels_.quantize_pack_group(rows, ld, count, a.K, a.tile(t), ceil16(tile_rows), m0 - t * kTileRows,
                               &a.scale[size_t(m0)], &a.zero[size_t(m0)]);
}

void Engine::gemm(const QuantizedLinear& w, const std::vector<int>& split, Activations& a, int tokens, float* y,
                  int ldy, const float* residual, int ld_residual) {
  const PackedLinear& p = w.packed;
  const int tiles = (tokens + kTileRows - 1) / kTileRows;
  if (p.kernel == LinearKernel::out_blocks) {
    // Each quantized activation feeds exactly one linear, so its planar tiles are made here, split by quad rows.
    constexpr int kQuadsPerTask = 64;
    const int parts = (a.Kq + kQuadsPerTask - 1) / kQuadsPerTask;
    pool_.parallel_for(tiles * parts, [&](int task, int) {
      const int t = task / parts, kq0 = (task % parts) * kQuadsPerTask, nkq = std::min(kQuadsPerTask, a.Kq - kq0);
      const int mt = ceil16(std::min(kTileRows, tokens - t * kTileRows));
      kernels_.planarize(a.tile(t) + size_t(kq0) * mt * 4, mt, nkq, a.planar_tile(t) + size_t(kq0) * 4 * kPlanarChunk);
    });
  }
  pool_.parallel_for(int(split.size()) - 1, [&](int part, int) {
    alignas(64) int32_t acc[kMaxTileRows * kChannelGroup];
    const DenseWeightsView dense = p.dense_view();
    const SparseWeightsView sparse = p.sparse_view();
    const OutBlockWeightsView blocks = p.out_block_view();
    // Sparse weights: tiles outer when a whole tile fits L1 (K = 768: 48 KiB) so it stays there across the part's
    // groups, whose weights come from DRAM for the first tile and from L2 after, or when this thread's share of the
    // weights and one tile fit L2 together (K = 3072 at 80-90% sparsity: 0.2-0.5 MB; groups outer made the
    // output-block kernel re-read 6 tiles of 196 KiB per group at 384 tokens and two threads slower than one).
    // Groups outer otherwise: long K, dense-ish weights that would not stay in L2.
    const bool tiles_outer =
        p.sparse() && (a.tile_bytes() <= 48 * 1024 || p.packed_bytes() / (split.size() - 1) + a.tile_bytes() <= 768 * 1024);
    const int groups = (split[part + 1] - split[part] + kChannelGroup - 1) / kChannelGroup;
    for (int i = 0; i < groups * tiles; i++) {
      const int n0 = split[part] + (tiles_outer ? i % groups : i / tiles) * kChannelGroup;
      const int t = tiles_outer ? i / groups : i % tiles;
      const int nc = std::min(kChannelGroup, split[part + 1] - n0);
      {
        const int m0 = t * kTileRows;
        const int rows = std::min(kTileRows, tokens - m0);
        if (p.kernel == LinearKernel::out_blocks)
          kernels_.out_block_gemm(a.planar_tile(t), ceil16(rows), blocks, n0, nc, acc);
        else if (p.kernel == LinearKernel::sparse_quads)
          kernels_.sparse_gemm(a.tile(t), ceil16(rows), sparse, n0, nc, acc);
        else
          kernels_.dense_gemm(a.tile(t), ceil16(rows), dense, n0, nc, acc);
        EpilogueParams params{a.scale.data() + m0, a.zero.data() + m0, w.scale.data() + n0, p.w_sum.data() + n0,
                              w.bias.data() + n0, residual ? residual + size_t(m0) * ld_residual + n0 : nullptr,
                              ld_residual};
        kernels_.epilogue(acc, rows, nc, params, y + size_t(m0) * ldy + n0, ldy);
      }
    }
  });
}

BatchOutputs Engine::run(const Batch& batch) {
  const ModelSpec& s = model_.spec;
  const int tokens = batch.offsets.back();
  const int rows = int(batch.offsets.size()) - 1;
  const int H = s.hidden, I = s.intermediate, head_dim = H / s.heads;
  ensure_capacity(tokens);
  Scratch& sc = *scratch_;
  std::array<double, size_t(Op::count)> seconds{};
  float* x = sc.x.data();
  float* x2 = sc.x2.data();
  auto token_tasks = (tokens + kTokensPerTask - 1) / kTokensPerTask;
  auto for_tokens = [&](auto&& fn) {
    pool_.parallel_for(token_tasks, [&](int task, int) {
      const int end = std::min(tokens, (task + 1) * kTokensPerTask);
      for (int m = task * kTokensPerTask; m < end; m++) fn(m);
    });
  };
  // fn on each token of a 16-token group, then the group's rows of `src` (row stride ld) quantized into `a` at once.
  auto for_groups_quantized = [&](const float* src, int ld, Activations* a, auto&& fn) {
    pool_.parallel_for(token_tasks, [&](int task, int) {
      const int m0 = task * kTokensPerTask, end = std::min(tokens, m0 + kTokensPerTask);
      for (int m = m0; m < end; m++) fn(m);
      if (a) quantize_group(src + size_t(m0) * ld, ld, m0, end - m0, tokens, *a);
    });
  };
  for (int r = 0; r < rows; r++)
    for (int m = batch.offsets[r]; m < batch.offsets[r + 1]; m++) sc.position[m] = m - batch.offsets[r];

  clear_tile_padding(tokens, sc.hidden_q);
  clear_tile_padding(tokens, sc.inner_q);
  {
    OpTimer timer(seconds, Op::embeddings);
    for_groups_quantized(x, H, &sc.hidden_q, [&](int m) {
      const size_t id = size_t(batch.ids[m]);
      const bool quantized = !model_.word_scale.empty();
      const float* type_row = nullptr;
      if (!model_.token_type.empty())
        type_row = model_.token_type.data() + size_t(batch.type_ids.empty() ? 0 : batch.type_ids[m]) * H;
      float* out = x + size_t(m) * H;
      embed_row(quantized ? model_.word_s8.data() + id * H : nullptr, quantized ? model_.word_scale[id] : 0.0f,
                quantized ? nullptr : model_.word_f32.data() + id * H,
                model_.position.data() + size_t(sc.position[m]) * H, type_row, H, out);
      ops_.layer_norm_row(out, model_.embedding_norm.gamma.data(), model_.embedding_norm.beta.data(), H,
                          s.layer_norm_eps, out);
    });
  }

  for (int l = 0; l < s.layers; l++) {
    const EncoderLayerWeights& layer = model_.layers[size_t(l)];
    const auto& split = splits_[size_t(l)];
    {
      OpTimer timer(seconds, Op::gemm_qkv);
      gemm(layer.qkv, split[0], sc.hidden_q, tokens, sc.qkv.data(), 3 * H, nullptr, 0);
    }
    {
      OpTimer timer(seconds, Op::attention);
      pool_.parallel_for(rows * s.heads, [&](int task, int thread) {
        const int r = task / s.heads, h = task % s.heads;
        const int begin = batch.offsets[r], length = batch.offsets[r + 1] - begin;
        const float* q = sc.qkv.data() + size_t(begin) * 3 * H + size_t(h) * head_dim;
        float* ctx = sc.ctx.data() + size_t(begin) * H + size_t(h) * head_dim;
        if (int8_attention_)
          kernels::qu8s8_attention_head_avx512vnni(q, q + H, q + 2 * H, 3 * H, length, head_dim, ctx, H,
                                                   sc.attention[thread].data());
        else
          ops_.attention_head(q, q + H, q + 2 * H, 3 * H, length, head_dim, ctx, H, sc.attention[thread].data());
      });
    }
    {
      OpTimer timer(seconds, Op::quantize);
      for_groups_quantized(sc.ctx.data(), H, &sc.hidden_q, [](int) {});
    }
    {
      OpTimer timer(seconds, Op::gemm_attention_output);
      gemm(layer.attention_output, split[1], sc.hidden_q, tokens, x2, H, x, H);
    }
    {
      OpTimer timer(seconds, Op::layer_norm);
      for_groups_quantized(x2, H, &sc.hidden_q, [&](int m) {
        float* row = x2 + size_t(m) * H;
        ops_.layer_norm_row(row, layer.attention_norm.gamma.data(), layer.attention_norm.beta.data(), H,
                            s.layer_norm_eps, row);
      });
    }
    {
      OpTimer timer(seconds, Op::gemm_intermediate);
      gemm(layer.intermediate, split[2], sc.hidden_q, tokens, sc.inner.data(), I, nullptr, 0);
    }
    {
      OpTimer timer(seconds, Op::gelu);
      for_groups_quantized(sc.inner.data(), I, &sc.inner_q, [&](int m) {
        float* row = sc.inner.data() + size_t(m) * I;
        if (s.activation == Activation::gelu)
          ops_.gelu_row(row, I);
        else
          relu_row(row, I);
      });
    }
    {
      OpTimer timer(seconds, Op::gemm_output);
      gemm(layer.output, split[3], sc.inner_q, tokens, x, H, x2, H);
    }
    {
      OpTimer timer(seconds, Op::layer_norm);
      for_groups_quantized(x, H, l + 1 < s.layers ? &sc.hidden_q : nullptr, [&](int m) {
        float* row = x + size_t(m) * H;
        ops_.layer_norm_row(row, layer.output_norm.gamma.data(), layer.output_norm.beta.data(), H, s.layer_norm_eps,
                            row);
      });
    }
  }

  BatchOutputs out;
  {
    OpTimer timer(seconds, Op::head);
    const FloatLinear& head = model_.head;
    if (s.task == Task::sequence_classification) {
      out.planes.assign(1, std::vector<float>(size_t(rows) * head.N));
      pool_.parallel_for(rows, [&](int r, int) {
        std::vector<float> pooled(static_cast<size_t>(H));
        const float* cls = x + size_t(batch.offsets[r]) * H;
        linear_rows(model_.pooler.weight.data(), model_.pooler.bias.data(), H, H, cls, pooled.data());
        for (float& v : pooled) v = s.pooler_activation == PoolerActivation::tanh ? std::tanh(v) : std::max(v, 0.0f);
        linear_rows(head.weight.data(), head.bias.data(), H, head.N, pooled.data(), out.planes[0].data() + size_t(r) * head.N);
      });
    } else if (s.task == Task::question_answering) {
      out.planes.assign(2, std::vector<float>(size_t(tokens)));
      for_tokens([&](int m) {
        float logits[2];
        linear_rows(head.weight.data(), head.bias.data(), H, 2, x + size_t(m) * H, logits);
        out.planes[0][size_t(m)] = logits[0];
        out.planes[1][size_t(m)] = logits[1];
      });
    } else {
      out.planes.assign(1, std::vector<float>(size_t(tokens) * head.N));
      for_tokens([&](int m) {
        linear_rows(head.weight.data(), head.bias.data(), H, head.N, x + size_t(m) * H,
                    out.planes[0].data() + size_t(m) * head.N);
      });
    }
  }
  std::lock_guard<std::mutex> lock(profile_mutex_);
  for (size_t op = 0; op < seconds.size(); op++) op_seconds_[op] += seconds[op];
  profiled_runs_++;
  return out;
}

}  // namespace sbs
