// Preloaded (LD_PRELOAD) by the bench tests in place of OpenBLAS's
// openblas_get_corename, as bertq looks it up: it names the generic Prescott
// kernel, as OpenBLAS 0.3.21 does on the Xeons it does not know, unless
// OPENBLAS_CORETYPE is set, and then the real answer. So the test meets the
// case bertq corrects on any CPU.
#include <dlfcn.h>

#include <cstdlib>

extern "C" char* openblas_get_corename() {
  static char prescott[] = "Prescott";
  if (!std::getenv("OPENBLAS_CORETYPE")) return prescott;
  using Real = char* (*)();
  static char unknown[] = "unknown";
  const auto real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "openblas_get_corename"));
  return real ? real() : unknown;
}
