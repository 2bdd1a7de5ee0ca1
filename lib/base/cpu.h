// What this CPU can run, as the kernels bertq relies on see it, and what that
// means for them. No LibTorch here: the decisions are plain functions of the
// features, so the core tests cover every CPU kind, not only the one they run
// on.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bertq {

struct CpuFeatures {
  bool avx = false;
  bool avx2_fma = false;  // AVX2 and FMA: OpenBLAS's Haswell kernels
  bool avx512 = false;    // AVX-512 F, CD, BW, DQ and VL: its SkylakeX kernels
};

// This CPU's features, as far as the OS lets programs use them.
CpuFeatures cpu_features();

// OpenBLAS built with DYNAMIC_ARCH picks its kernel from the CPU's family and
// model when it loads, and 0.3.21 (Debian 12's) does not know the newer
// Xeons: it falls back to its generic Prescott kernel, 4-5x slower on BERT's
// float products. Given the kernel it `detected`, the kernel to ask for
// instead through OPENBLAS_CORETYPE, or nothing when `detected` already uses
// AVX2 (a choice among AVX2 and AVX-512 kernels is OpenBLAS's to make).
std::optional<std::string> better_openblas_kernel(std::string_view detected, const CpuFeatures& cpu);

// The CPUs this process may run on: its affinity mask, which taskset,
// cgroup cpusets and schedulers' CPU binding narrow; at least 1.
int usable_cpus();

// LibTorch's intra-op threads for work whose result does not depend on them
// (conversion's passes and weight packing). LibTorch's own default is its
// count of physical cores, which some VMs report as 1 however many vCPUs they
// give; so, unless the user chose (`asked`, or OMP_NUM_THREADS/MKL_NUM_THREADS,
// which LibTorch reads itself: `env_set`), every usable CPU, shared among the
// `jobs` conversions that run at once.
struct ThreadChoice {
  std::optional<int> threads;  // nullopt: leave LibTorch's own (environment) choice
  std::string why;             // for the log: "--threads", "OMP_NUM_THREADS", ...
};
ThreadChoice conversion_threads(std::optional<int> asked, bool env_set, int cpus, int jobs = 1);

// Whether OMP_NUM_THREADS or MKL_NUM_THREADS is set (and not empty).
bool threads_set_in_environment();

}  // namespace bertq
