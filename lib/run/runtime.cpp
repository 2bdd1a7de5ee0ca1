#include "run/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "base/cpu.h"
#include "base/files.h"
#include "jit/engines.h"
#include "jit/qtensor.h"

namespace bertq {
namespace {

// Set by choose_openblas_kernel for the image it starts: the kernel OpenBLAS
// had detected. Read once, then removed, so that no child inherits it.
constexpr const char* kDetectedVar = "BERTQ_OPENBLAS_DETECTED";

template <typename F>
F openblas_function(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

std::string openblas_kernel() {
  auto core = openblas_function<char* (*)()>("openblas_get_corename");
  return core ? core() : "";
}

std::string& inherited_detected_kernel() {
  static std::string detected = [] {
    const char* v = std::getenv(kDetectedVar);
    std::string s = v ? v : "";
    unsetenv(kDetectedVar);
    return s;
  }();
  return detected;
}

}  // namespace

BlasInfo blas_info() {
  BlasInfo info;
  auto config = openblas_function<char* (*)()>("openblas_get_config");
  if (!config) {
    info.name = "unknown BLAS";
    return info;
  }
  info.name = config();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."
  if (auto parallel = openblas_function<int (*)()>("openblas_get_parallel")) {
    switch (parallel()) {
      case 0:
        info.threading = "single-threaded";
        break;
      case 1:
        info.threading = "pthreads";
        break;
      case 2:
        info.threading = "OpenMP";
        break;
      default:
        break;
    }
  }
  info.kernel = openblas_kernel();
  const std::string& detected = inherited_detected_kernel();
  if (!detected.empty()) {
    info.kernel_source = "bertq";
    info.detected_kernel = detected;
  } else {
    info.kernel_source = std::getenv("OPENBLAS_CORETYPE") ? "OPENBLAS_CORETYPE" : "detected";
  }
  return info;
}

std::string describe(const BlasInfo& b) {
  std::string s = b.name;
  if (!b.threading.empty()) s += " (" + b.threading + (b.threading == "single-threaded" ? ")" : " threads)");
  if (b.kernel.empty()) return s;
  s += ", kernel " + b.kernel;
  if (b.kernel_source == "bertq")
    s += " (bertq set OPENBLAS_CORETYPE=" + b.kernel + ": OpenBLAS had taken this CPU for " + b.detected_kernel +
         "; set OPENBLAS_CORETYPE yourself to choose)";
  else if (b.kernel_source == "OPENBLAS_CORETYPE")
    s += " (from OPENBLAS_CORETYPE)";
  return s;
}

void choose_openblas_kernel(char** argv) {
  (void)inherited_detected_kernel();             // an image started by this function: read its note first
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or ours already
  auto config = openblas_function<char* (*)()>("openblas_get_config");
  // Only a DYNAMIC_ARCH build has kernels to choose from.
  if (!config || std::string(config()).find("DYNAMIC_ARCH") == std::string::npos) return;
  const std::string detected = openblas_kernel();
  const auto better = better_openblas_kernel(detected, cpu_features());
  if (!better) return;
  setenv("OPENBLAS_CORETYPE", better->c_str(), 1);
  setenv(kDetectedVar, detected.c_str(), 1);
  // exec keeps ignored signals ignored but LibTorch 2.x has replaced an
  // ignored SIGHUP with its handler by now: give the new image the
  // dispositions this one started with (`nohup bertq bench` holds).
  for (int sig : kStopSignals) std::signal(sig, ignored_at_start(sig) ? SIG_IGN : SIG_DFL);
  execv("/proc/self/exe", argv);
  // No new image (no /proc, say): run on with the kernel OpenBLAS took.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kDetectedVar);
}

std::string saturation_warning(const torch::jit::Module& model, Engine engine, const std::string& path) {
  const size_t n = full_range_linears(model).size();
  if (n == 0) return "";
  const std::string why = full_range_refusal(engine);
  if (why.empty()) return "";
  return path + ": " + std::to_string(n) + " of its int8 linears take full 8-bit activations, which engine " +
         to_string(engine) + " does not compute exactly here (" + why + "): its results here are not the model's";
}

RuntimeInfo configure_runtime(int threads, Engine engine, bool tune) {
  RuntimeInfo info;
  info.threads = threads;
  at::set_num_threads(threads);
  set_engine(engine);
  info.engine = to_string(engine);
  info.blas = blas_info();
  if (threads > 1 && info.blas.threading == "pthreads")
    info.warnings.push_back(
        "this OpenBLAS runs its own pthreads, which compete with LibTorch's OpenMP threads: float products gain "
        "little from --threads " +
        std::to_string(threads) + "; install libopenblas0-openmp (bertq prefers it when present; docs/deploy.md)");
  else if (threads > 1 && info.blas.threading == "single-threaded")
    info.warnings.push_back("this OpenBLAS is single-threaded: float products run on one core whatever --threads says");
  if (!tune) return info;
  // Large temporaries stay in the heap (32 MiB is glibc's largest mmap
  // threshold) and the heap is never trimmed: the next forward reuses the
  // pages instead of faulting them in again.
  info.allocator_tuned = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 &&
                         mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024) == 1 &&
                         mallopt(M_TOP_PAD, 64 * 1024 * 1024) == 1;
  // OpenBLAS has its own thread pool; LibTorch does not tell it anything.
  if (auto set = openblas_function<void (*)(int)>("openblas_set_num_threads")) set(threads);
  return info;
}

}  // namespace bertq
