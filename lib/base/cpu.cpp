#include "base/cpu.h"

#include <sched.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <thread>

namespace bertq {

CpuFeatures cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's checks include the OS's consent (XGETBV): a kernel that does not
  // save the AVX-512 state leaves avx512f false even when CPUID has it.
  __builtin_cpu_init();
  f.avx = __builtin_cpu_supports("avx");
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
#endif
  return f;
}

namespace {

// OpenBLAS's names (openblas_get_corename) of the kernels that use AVX2 or
// AVX-512; every other x86 kernel is older (Prescott, Core2, Nehalem,
// Sandybridge, ...).
bool uses_avx2(std::string_view kernel) {
  static constexpr std::array<std::string_view, 6> kModern = {"haswell",        "zen",      "skylakex", "cooperlake",
                                                              "sapphirerapids", "excavator"};
  std::string lower(kernel);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(kModern.begin(), kModern.end(), lower) != kModern.end();
}

}  // namespace

std::optional<std::string> better_openblas_kernel(std::string_view detected, const CpuFeatures& cpu) {
  if (detected.empty() || uses_avx2(detected)) return std::nullopt;
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return std::nullopt;
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

ThreadChoice conversion_threads(std::optional<int> asked, bool env_set, int cpus, int jobs) {
  if (asked) return {asked, "--threads"};
  if (env_set) return {std::nullopt, "OMP_NUM_THREADS or MKL_NUM_THREADS, read by LibTorch"};
  const int n = std::max(1, cpus / std::max(1, jobs));
  return {n, jobs > 1 ? "the usable CPUs shared among --jobs " + std::to_string(jobs) : "the usable CPUs"};
}

bool threads_set_in_environment() {
  for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"})
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}

}  // namespace bertq
