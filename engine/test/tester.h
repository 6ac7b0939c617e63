// Private to the kernel tester (engine/test/*.cc): what its check families share. Each check returns false after
// printing the first mismatch ("MISMATCH ..."), and counts what it checked in Failure::checks.
#pragma once

#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/reference.h"

namespace sbs::tester {

using Rng = TestRng;

struct Failure {
  bool failed = false;
  long checks = 0;
};

inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// check-gemm.cc: packing, planarize and the three tile GEMMs on every pattern and shape; the uint16 K limits.
bool check_gemm_suite(const std::vector<Isa>& isas, Rng& rng, Failure& f);
bool check_sparse_k_limits(const std::vector<Isa>& isas, Rng& rng, Failure& f);
// check-quantize.cc: epilogue, quantize_pack_row / _group, split_channels.
bool check_epilogue(const std::vector<Isa>& isas, Rng& rng, Failure& f);
bool check_quantize(const std::vector<Isa>& isas, Rng& rng, Failure& f);
bool check_quantize_group(const std::vector<Isa>& isas, Rng& rng, Failure& f);
bool check_split(Rng& rng, Failure& f);
// check-attention-gelu.cc: int8 attention and GELU against their scalar references and fp64.
bool check_attention(const std::vector<Isa>& isas, Rng& rng, Failure& f);
bool check_gelu(Rng& rng, Failure& f);

}  // namespace sbs::tester
