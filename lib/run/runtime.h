// Process set-up for running models fast on CPU: what bertq's own `bench`,
// `eval`, `compare` and `tune` do at start-up, and what docs/deploy.md tells
// users to do in their own LibTorch processes.
#pragma once

#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace bertq {

enum class Engine;

// The OpenBLAS LibTorch's float kernels run on, as it describes itself.
struct BlasInfo {
  std::string name;       // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...", or "unknown BLAS"
  std::string threading;  // "OpenMP", "pthreads", "single-threaded"; empty if not OpenBLAS
  std::string kernel;     // the kernel in use (openblas_get_corename); empty if not OpenBLAS
  // Who chose the kernel: "detected" (OpenBLAS, from the CPU), "OPENBLAS_CORETYPE"
  // (the user's environment), or "bertq" (choose_openblas_kernel).
  std::string kernel_source;
  std::string detected_kernel;  // with "bertq": what OpenBLAS had taken this CPU for
};

struct RuntimeInfo {
  int threads = 1;
  std::string engine;
  BlasInfo blas;
  bool allocator_tuned = false;
  std::vector<std::string> warnings;  // what will make these threads slower than they could be
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

BlasInfo blas_info();

// One line for logs and `--version`: "OpenBLAS 0.3.21 ... (OpenMP threads), kernel SkylakeX",
// with who chose the kernel when it was not OpenBLAS itself.
std::string describe(const BlasInfo& blas);

// What is wrong with running `model` on `engine` here, or "": a model whose
// int8 linears take full 8-bit activations, where the int8 kernel saturates
// 16-bit sums (full_range_refusal), gives wrong logits without an error.
std::string saturation_warning(const torch::jit::Module& model, Engine engine, const std::string& path);

// OpenBLAS reads OPENBLAS_CORETYPE once, as it loads (before main). When it
// took this CPU for an old one (better_openblas_kernel) and the user did not
// set OPENBLAS_CORETYPE, this sets it and executes bertq again with the same
// `argv`, so that the float products run the kernel the CPU has; blas_info()
// then says so. Returns (without effect) when nothing is to gain, or if the
// new image cannot be started. Call first thing in main, for the commands
// that run models.
void choose_openblas_kernel(char** argv);

}  // namespace bertq
