#include "run/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

#include "jit/engines.h"

namespace bertq {

std::string blas_name() {
  using GetString = char* (*)();
  if (auto config = reinterpret_cast<GetString>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
    return config();  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."
  return "unknown BLAS";
}

RuntimeInfo configure_runtime(int threads, Engine engine, bool tune) {
  RuntimeInfo info;
  info.threads = threads;
  at::set_num_threads(threads);
  set_engine(engine);
  info.engine = to_string(engine);
  info.blas = blas_name();
  using GetString = char* (*)();
  if (auto core = reinterpret_cast<GetString>(dlsym(RTLD_DEFAULT, "openblas_get_corename")))
    info.openblas_coretype = core();
  if (!tune) return info;
  // Large temporaries stay in the heap (32 MiB is glibc's largest mmap
  // threshold) and the heap is never trimmed: the next forward reuses the
  // pages instead of faulting them in again.
  info.allocator_tuned = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 &&
                         mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024) == 1 &&
                         mallopt(M_TOP_PAD, 64 * 1024 * 1024) == 1;
  // OpenBLAS has its own thread pool; LibTorch does not tell it anything.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
  return info;
}

}  // namespace bertq
