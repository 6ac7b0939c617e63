// Dense tile GEMM, 16-channel group x Mt tokens, AVX512-VNNI. Tokens are the vector lanes (16 per zmm, 4 bytes
// each, straight from the tile) and each weight dword is broadcast, since VPDPBUSD takes its u8 operand from a
// register and its s8 operand from a register or a broadcast. A micro-kernel keeps NC channels x CB token blocks
// of accumulators in zmm registers over a block of K (quads_per_block) and parks them in `acc`, so the tile rows
// of that K block stay in L1 while every channel of the group passes over them.
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

// Register blocking for MB = Mt/16 token blocks: micro-kernels of CB token blocks x NC channels, NC*CB
// accumulators + CB tile vectors + NC broadcasts within the 32 zmm, no spills (checked with objdump, GCC 12
// -O2/-O3). Mt = 96 and 128 run as two chunks of 48 and 64 tokens: 4 x 4 measured faster than 8 x 2 at Mt = 128
// (fewer tile loads per VPDPBUSD).
template <int MB>
struct Blocking {
  static constexpr int CB = MB == 6 ? 3 : MB == 8 ? 4 : MB;
  static constexpr int NC = CB == 1 ? 8 : CB == 2 ? 8 : CB == 3 ? 5 : CB == 4 ? 4 : 3;
};

// acc[c][mb] += over k < nk: tile row k (tokens of blocks [0, CB) from `a`) x weight w[c * Kq + k].
template <int MB, int CB, int NC>
inline void dense_block(const uint8_t* a, const int32_t* w, size_t Kq, int nk, int32_t* park, bool first) {
  constexpr size_t kRow = MB * 64;  // bytes of one quad row of the tile
  __m512i acc[NC][CB];
#pragma GCC unroll 8
  for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
    for (int mb = 0; mb < CB; ++mb)
      acc[c][mb] = first ? _mm512_setzero_si512() : _mm512_loadu_si512(park + mb * 256 + c * 16);
  for (int k = 0; k < nk; ++k) {
    __m512i av[CB];
#pragma GCC unroll 8
    for (int mb = 0; mb < CB; ++mb) av[mb] = _mm512_loadu_si512(a + k * kRow + mb * 64);
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) {
      const __m512i wb = _mm512_set1_epi32(w[c * Kq + k]);
#pragma GCC unroll 8
      for (int mb = 0; mb < CB; ++mb) acc[c][mb] = dpbusd512(acc[c][mb], av[mb], wb);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
    for (int mb = 0; mb < CB; ++mb) _mm512_storeu_si512(park + mb * 256 + c * 16, acc[c][mb]);
}

template <int MB>
void dense_tile(const uint8_t* tile, const DenseWeightsView& w, int n0, int nc, int32_t* acc) {
  constexpr int CB = Blocking<MB>::CB, NC = Blocking<MB>::NC;
  static_assert(MB % CB == 0, "token chunks must tile Mt");
  const size_t Kq = size_t(w.Kq);
  const int kb = quads_per_block(MB * 16, kDenseTileBlockBytes);
  for (int k0 = 0; k0 < w.Kq; k0 += kb) {
    const int nk = std::min(kb, w.Kq - k0);
    const bool first = k0 == 0;
    const int32_t* wq = w.quads + size_t(n0) * Kq + k0;
    for (int m0 = 0; m0 < MB; m0 += CB) {
      const uint8_t* a = tile + size_t(k0) * MB * 64 + m0 * 64;
      int32_t* park = acc + m0 * 256;
      int c = 0;
      for (; c + NC <= nc; c += NC) dense_block<MB, CB, NC>(a, wq + c * Kq, Kq, nk, park + c * 16, first);
      if (NC > 2)
        for (; c + 2 <= nc; c += 2) dense_block<MB, CB, 2>(a, wq + c * Kq, Kq, nk, park + c * 16, first);
      for (; c < nc; ++c) dense_block<MB, CB, 1>(a, wq + c * Kq, Kq, nk, park + c * 16, first);
    }
  }
  // Channels past nc are unspecified, but the transposes read them: give them defined values.
  for (int c = nc; c < 16; ++c)
    for (int mb = 0; mb < MB; ++mb) _mm512_storeu_si512(acc + mb * 256 + c * 16, _mm512_setzero_si512());
  transpose_acc_blocks_avx512(acc, MB);
}

}  // namespace

void qu8s8_gemm_dense_avx512vnni(const uint8_t* tile, int Mt, const DenseWeightsView& w, int n0, int nc,
                                 int32_t* acc) {
  switch (Mt / 16) {
    case 1: return dense_tile<1>(tile, w, n0, nc, acc);
    case 2: return dense_tile<2>(tile, w, n0, nc, acc);
    case 3: return dense_tile<3>(tile, w, n0, nc, acc);
    case 4: return dense_tile<4>(tile, w, n0, nc, acc);
    case 5: return dense_tile<5>(tile, w, n0, nc, acc);
    case 6: return dense_tile<6>(tile, w, n0, nc, acc);
    case 7: return dense_tile<7>(tile, w, n0, nc, acc);
    case 8: return dense_tile<8>(tile, w, n0, nc, acc);
    default: return;  // not a valid tile height (a multiple of 16 up to kMaxTileRows)
  }
}

}  // namespace sbs::kernels

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
