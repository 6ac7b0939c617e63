// Sparse tile GEMM, 16-channel group x Mt tokens, AVX512-VNNI: each channel walks its CSR list of non-zero quads;
// one broadcast weight dword feeds MB = Mt/16 VPDPBUSD over the tile row kq. Lists are walked U entries at a
// time into U independent accumulator sets, so MB*U dependency chains cover the VPDPBUSD latency even for small
// tiles. Long K is cut into blocks (quads_per_block) with a cursor per channel so the tile rows of one block stay
// in L1 while the 16 lists pass over them; partial sums are parked in `acc` between blocks.
#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "kernels-internal.h"
#include "transpose-avx512.h"
#include "vnni-asm.h"

#if SBS_KERNELS_X86
#pragma GCC push_options
// GCC 12 flags the intentionally undefined pass-through operand inside its own AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")

namespace sbs::kernels {

namespace {

// Accumulator sets: MB * U chains cover the VPDPBUSD latency; more sets measured no faster (Zen 5, Mt = 64).
template <int MB>
constexpr int sets_per_channel() {
  return MB == 1 ? 8 : MB == 2 ? 4 : MB <= 4 ? 3 : 2;
}

// Entries [e, end) of one channel whose kq < k1; returns where it stopped (the channel's cursor for the next K
// block). Testing kq against k1 in the loop costs one predictable compare per U entries, far less than a
// binary search for the block end (mispredicted branches) on the few entries a sparse channel has per block.
template <int MB, int U>
inline uint32_t sparse_channel(const uint8_t* tile, const uint16_t* kq, const int32_t* q, uint32_t e, uint32_t end,
                               uint32_t k1, int32_t* park, bool first) {
  constexpr size_t kRow = MB * 64;
  __m512i acc[U][MB];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 8
    for (int mb = 0; mb < MB; ++mb) acc[u][mb] = _mm512_setzero_si512();
  for (; e + U <= end && kq[e + U - 1] < k1; e += U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const uint8_t* a = tile + kq[e + u] * kRow;
      const __m512i wb = _mm512_set1_epi32(q[e + u]);
#pragma GCC unroll 8
      for (int mb = 0; mb < MB; ++mb)
        acc[u][mb] = dpbusd512(acc[u][mb], _mm512_loadu_si512(a + mb * 64), wb);
    }
  }
  for (; e < end && kq[e] < k1; ++e) {
    const uint8_t* a = tile + kq[e] * kRow;
    const __m512i wb = _mm512_set1_epi32(q[e]);
#pragma GCC unroll 8
    for (int mb = 0; mb < MB; ++mb) acc[0][mb] = dpbusd512(acc[0][mb], _mm512_loadu_si512(a + mb * 64), wb);
  }
#pragma GCC unroll 8
  for (int mb = 0; mb < MB; ++mb) {
    __m512i s = acc[0][mb];
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) s = _mm512_add_epi32(s, acc[u][mb]);
    if (!first) s = _mm512_add_epi32(s, _mm512_loadu_si512(park + mb * 256));
    _mm512_storeu_si512(park + mb * 256, s);
  }
  return e;
}

// Software prefetch (into L2) of the next channel group's CSR entries, a 16th of them per channel of this group:
// a model's sparse weights do not fit the cache, and with K blocks the 16 channel cursors are 32 streams, more
// than the hardware prefetchers follow.
struct NextGroupPrefetch {
  const char* kq_begin;
  const char* q_begin;
  size_t kq_lines, q_lines;
  NextGroupPrefetch(const SparseWeightsView& w, int n0, int nc) {
    const int n1 = std::min(w.N, n0 + nc), n2 = std::min(w.N, n1 + kChannelGroup);
    const uint32_t e1 = w.row_begin[n1], e2 = w.row_begin[n2];
    kq_begin = reinterpret_cast<const char*>(w.kq + e1);
    q_begin = reinterpret_cast<const char*>(w.quads + e1);
    kq_lines = (size_t(e2 - e1) * sizeof(uint16_t) + 63) / 64;
    q_lines = (size_t(e2 - e1) * sizeof(int32_t) + 63) / 64;
  }
  // Part c of 16.
  void issue(int c) const {
    for (size_t l = kq_lines * c / 16; l < kq_lines * (c + 1) / 16; ++l)
      _mm_prefetch(kq_begin + l * 64, _MM_HINT_T1);
    for (size_t l = q_lines * c / 16; l < q_lines * (c + 1) / 16; ++l)
      _mm_prefetch(q_begin + l * 64, _MM_HINT_T1);
  }
};

template <int MB>
void sparse_tile(const uint8_t* tile, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
  constexpr int U = sets_per_channel<MB>();
  const uint32_t* rb = w.row_begin + n0;
  const int kb = quads_per_block(MB * 16, kSparseTileBlockBytes);
  const NextGroupPrefetch next(w, n0, nc);
  if (w.Kq <= kb) {
    for (int c = 0; c < nc; ++c) {
      next.issue(c);
      sparse_channel<MB, U>(tile, w.kq, w.quads, rb[c], rb[c + 1], UINT32_MAX, acc + c * 16, true);
    }
    for (int c = nc; c < kChannelGroup; ++c) next.issue(c);
  } else {
    uint32_t cursor[kChannelGroup];
    for (int c = 0; c < nc; ++c) cursor[c] = rb[c];
    for (int k0 = 0; k0 < w.Kq; k0 += kb) {
      const uint32_t k1 = uint32_t(k0 + kb);
      for (int c = 0; c < nc; ++c) {
        if (k0 == 0) next.issue(c);
        cursor[c] = sparse_channel<MB, U>(tile, w.kq, w.quads, cursor[c], rb[c + 1], k1, acc + c * 16, k0 == 0);
      }
    }
    for (int c = nc; c < kChannelGroup; ++c) next.issue(c);
  }
  for (int c = nc; c < 16; ++c)
    for (int mb = 0; mb < MB; ++mb) _mm512_storeu_si512(acc + mb * 256 + c * 16, _mm512_setzero_si512());
  transpose_acc_blocks_avx512(acc, MB);
}

}  // namespace

void qu8s8_spmm_avx512vnni(const uint8_t* tile, int Mt, const SparseWeightsView& w, int n0, int nc, int32_t* acc) {
  switch (Mt / 16) {
    case 1: return sparse_tile<1>(tile, w, n0, nc, acc);
    case 2: return sparse_tile<2>(tile, w, n0, nc, acc);
    case 3: return sparse_tile<3>(tile, w, n0, nc, acc);
    case 4: return sparse_tile<4>(tile, w, n0, nc, acc);
    case 5: return sparse_tile<5>(tile, w, n0, nc, acc);
    case 6: return sparse_tile<6>(tile, w, n0, nc, acc);
    case 7: return sparse_tile<7>(tile, w, n0, nc, acc);
    case 8: return sparse_tile<8>(tile, w, n0, nc, acc);
    default: return;
  }
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
