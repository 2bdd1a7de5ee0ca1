#!/usr/bin/env bash
# The README's test command: installs what is missing, checks the formatting,
# builds into $BUILD_DIR and runs the whole test suite there. The same script
# runs natively on Debian 12 (LibTorch 1.13.1) and Debian 13 (LibTorch 2.6.0),
# and inside tests/scripts/trixie.sh's root.
#
# Usage: tests/scripts/run-tests.sh [--core | --sanitize] [--no-format] [--no-browser] [-- CTEST_ARGS...]
#   (none)        Release build into build/, the whole suite
#   --core        only what needs no LibTorch (-DBERTQ_TORCH=OFF) into build-core/: builds and
#                 tests on a machine without libtorch-dev
#   --sanitize    AddressSanitizer + UndefinedBehaviorSanitizer build into build-asan/, the whole
#                 suite under both (the bertq binary the CLI tests run is instrumented too)
#   --no-format   skip the formatting check
#   --no-browser  skip the HTML layout test in Chromium (and do not install chromium)
# Environment: BUILD_DIR (overrides the folder), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=release format=1 browser=1
ctest_args=()
while (($#)); do
  case "$1" in
    --core) mode=core browser=0 ;;
    --sanitize) mode=sanitize ;;
    --no-format) format=0 ;;
    --no-browser) browser=0 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "run-tests: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done

deps=()
[[ $mode == core ]] && deps+=(--core)
((format)) || deps+=(--no-format)
((browser)) || deps+=(--no-browser)
tests/scripts/install-deps.sh "${deps[@]}"
if ((format)); then
  tests/scripts/check-format.sh
else
  echo "run-tests: formatting not checked (--no-format)"
fi

case "$mode" in
  release) export BUILD_DIR=${BUILD_DIR:-build} ;;
  core) export BUILD_DIR=${BUILD_DIR:-build-core} BERTQ_CMAKE_ARGS="-DBERTQ_TORCH=OFF" ;;
  sanitize)
    export BUILD_DIR=${BUILD_DIR:-build-asan} BERTQ_CMAKE_ARGS="-DBERTQ_SANITIZE=ON" BUILD_TYPE=RelWithDebInfo
    # detect_leaks=0: LibTorch never frees its global state (operator registry,
    #   JIT and thread-pool singletons, allocators) at exit, so LeakSanitizer would
    #   report thousands of "leaks" at the end of every process that loads a model.
    # detect_stack_use_after_return: catches returning views of local buffers.
    # check_initialization_order + strict_init_order: static-initialization-order
    #   bugs between bertq's globals.
    # Only bertq's code is instrumented; LibTorch is Debian's uninstrumented build,
    # so memory errors inside LibTorch itself are not detected.
    # abort_on_error=1 (both): a report ends the process with SIGABRT (exit 134),
    #   which no test expects, rather than exit 1, which some CLI tests do expect.
    # halt_on_error=1: UBSan only prints by default and the test would still pass.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
    ;;
esac
tests/scripts/build.sh
if ((!browser)) && [[ $mode != core ]]; then
  echo "run-tests: the HTML layout test in Chromium is skipped (--no-browser)"
  ctest_args+=(-E "^html: ")
fi
cd "$BUILD_DIR"
ctest --output-on-failure -j"${JOBS:-2}" "${ctest_args[@]}"
