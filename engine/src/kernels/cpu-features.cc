// Run-time ISA detection. cpuid says what the core implements, xgetbv whether the OS saves the YMM/ZMM state
// on context switches; both are needed. GCC 12's __builtin_cpu_supports does not know "avxvnni", so cpuid is read
// directly for every feature, which also keeps the checks in one style.
#include "kernels-internal.h"

#if SBS_KERNELS_X86
#include <cpuid.h>
#endif

namespace sbs {

namespace {

struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA + OS-enabled YMM state
  bool avxvnni = false;     // AVX-VNNI (VEX, ymm) on top of avx2
  bool avx512vnni = false;  // AVX512 F/BW/VL/VNNI + OS-enabled ZMM and opmask state
};

#if SBS_KERNELS_X86
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), fma = ecx & (1u << 12);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;            // SSE + AVX
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned max_subleaf = eax;
  const bool avx2 = ebx & (1u << 5);
  const bool avx512f = ebx & (1u << 16), avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31);
  const bool avx512_vnni = ecx & (1u << 11);
  bool avx_vnni = false;
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    avx_vnni = eax & (1u << 4);
  }
  f.avx2 = ymm_state && avx2 && fma;
  f.avxvnni = f.avx2 && avx_vnni;
  f.avx512vnni = f.avx2 && zmm_state && avx512f && avx512bw && avx512vl && avx512_vnni;
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

const CpuFeatures& features() {
  // A function-local constant: computed once, thread-safe, never changed afterwards.
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512vnni: return "avx512vnni";
  }
  return "unknown";
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return features().avx2;
    case Isa::avxvnni: return features().avxvnni;
    case Isa::avx512vnni: return features().avx512vnni;
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::avx512vnni)) return Isa::avx512vnni;
  if (isa_supported(Isa::avxvnni)) return Isa::avxvnni;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

}  // namespace sbs
