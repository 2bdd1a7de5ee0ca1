// Process set-up for running models fast on CPU: what bertq's own `bench`,
// `eval` and `compare` do at start-up, and what docs/performance.md tells
// users to do in their own LibTorch processes.
#pragma once

#include <string>

namespace bertq {

enum class Engine;

struct RuntimeInfo {
  int threads = 1;
  std::string engine;
  std::string blas;               // "OpenBLAS <config>" or "unknown BLAS"
  std::string openblas_coretype;  // the kernel OpenBLAS chose, if it says
  bool allocator_tuned = false;
};

// 1. glibc malloc keeps freed memory instead of returning it to the OS (a
//    fresh 4 KiB page costs ~15 us here, and BERT's temporaries are tens of
//    MB, so each forward would pay page faults again);
// 2. LibTorch's intra-op pool and OpenBLAS's own pool both get `threads`
//    (OpenBLAS ignores torch::set_num_threads);
// 3. the quantized engine is set.
// Call once, before any model runs.
// With `tune` false only the thread count and engine are set (LibTorch's
// defaults otherwise), to measure what the tuning is worth.
RuntimeInfo configure_runtime(int threads, Engine engine, bool tune = true);

// The BLAS LibTorch's float kernels use, as it names itself ("OpenBLAS
// 0.3.21 DYNAMIC_ARCH ..."), or "unknown BLAS".
std::string blas_name();

}  // namespace bertq
