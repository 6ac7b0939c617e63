// Standalone tester of the engine's int8 kernels: every ISA this CPU runs is checked bit-exactly against the plain
// reference GEMM (tile kernels) or the scalar kernels (epilogue, quantizers, attention, GELU) on seeded random shapes.
// The check families live in engine/test/check-*.cc.
// Build: g++ -std=c++17 -O2 -Iengine/src -Iengine/test engine/src/kernels/*.cc engine/test/*.cc
// Exit status 0 when everything matches; otherwise the first mismatch is printed and the status is 1.
#include <chrono>
#include <cstdio>
#include <vector>

#include "tester.h"

using namespace sbs;
using namespace sbs::tester;

namespace {

std::vector<Isa> supported_isas(bool print) {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
    const bool ok = isa_supported(isa);
    if (print) std::printf("isa %-10s %s\n", isa_name(isa), ok ? "run" : "skipped (not supported by this CPU)");
    if (ok) isas.push_back(isa);
  }
  return isas;
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Isa> isas = supported_isas(true);
  std::printf("best_isa: %s\n", isa_name(best_isa()));
  Failure f;
  Rng rng(20240611);
  for (Isa isa : isas)
    if (kernels_for(isa).isa != isa) {
      std::printf("MISMATCH kernels_for(%s).isa\n", isa_name(isa));
      return 1;
    }
  if (!check_gemm_suite(isas, rng, f)) return 1;
  if (!check_epilogue(isas, rng, f)) return 1;
  std::printf("epilogue: OK\n");
  if (!check_quantize(isas, rng, f) || !check_quantize_group(isas, rng, f)) return 1;
  std::printf("quantize_pack_row, quantize_pack_group: OK\n");
  if (!check_split(rng, f)) return 1;
  std::printf("split_channels: OK\n");
  if (!check_attention(isas, rng, f)) return 1;
  std::printf("int8 attention: OK\n");
  if (!check_gelu(rng, f)) return 1;
  std::printf("gelu: OK\n");
  if (!check_sparse_k_limits(isas, rng, f)) return 1;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("kernel-tester: all %ld checks passed on %zu ISAs in %.1f s\n", f.checks, isas.size(), seconds);
  return 0;
}
