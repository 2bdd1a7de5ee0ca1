#!/usr/bin/env bash
# Builds bertq, its library and the tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC, -DBERTQ_SANITIZE=ON) into build-asan/ and
# runs the whole test suite there.
# Usage: tests/scripts/sanitize.sh [extra ctest arguments, e.g. -R qconfig]
# Environment: JOBS (default 2), BUILD_DIR (default build-asan).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build-asan}
jobs=${JOBS:-2}

tests/scripts/install-deps.sh
cmake -S . -B "$build" -DBERTQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build "$build" -j"$jobs"

# detect_leaks=0: LibTorch never frees its global state (operator registry,
#   JIT and thread-pool singletons, allocators) at exit, so LeakSanitizer would
#   report thousands of "leaks" at the end of every process that loads a model.
# detect_stack_use_after_return: catches returning views of local buffers.
# check_initialization_order + strict_init_order: static-initialization-order
#   bugs between bertq's globals.
# Only bertq's code is instrumented; LibTorch is Debian's uninstrumented build,
# so memory errors inside LibTorch itself are not detected.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:abort_on_error=1}
# halt_on_error=1: UBSan only prints by default and the test would still pass.
# abort_on_error=1 (both): a report ends the process with SIGABRT (exit 134), which
#   no test expects, rather than exit 1, which some CLI tests do expect.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}

cd "$build"
# The tests also run the bertq binary; it inherits the options above.
ctest --output-on-failure -j"$jobs" "$@"
