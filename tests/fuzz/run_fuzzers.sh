#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DBERTQ_FUZZ=ON) into build-fuzz/ and
# runs each for a bounded time on a copy of its seed corpus.
# Usage: tests/fuzz/run_fuzzers.sh [SECONDS]      (default 60 per target)
# Environment: JOBS (build parallelism, default 2), FUZZ_TARGETS (default
#   "fuzz_qconfig fuzz_archive"), FUZZ_ARGS (extra libFuzzer flags).
# Exits 1 if any target found a crash, leak, timeout or OOM; the input that
# triggered it is kept under build-fuzz/fuzz-work/TARGET/artifacts/.
set -euo pipefail

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: $0 [SECONDS]  (seconds per fuzz target, default 60)" >&2
  exit 2
fi
cd "$(dirname "$0")/../.."
root=$(pwd)
build="$root/build-fuzz"
targets=(${FUZZ_TARGETS:-fuzz_qconfig fuzz_archive})

# --- dependencies: the project's, plus clang and its libFuzzer/sanitizer runtimes
tests/scripts/install-deps.sh
need=()
command -v clang++ >/dev/null || need+=(clang)
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null ||
  need+=(libclang-rt-dev)
if ((${#need[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  echo "run_fuzzers: installing ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# --- build
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBERTQ_FUZZ=ON -DBERTQ_TORCH=OFF -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]}"

# --- run
# halt_on_error: UBSan reports are findings, not warnings (the targets are also
# built with -fno-sanitize-recover=undefined). lsan.supp: a LibTorch leak on
# malformed zips, explained there.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0}

failed=()
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  work="$build/fuzz-work/$t"
  rm -rf "$work/corpus"
  mkdir -p "$work/corpus" "$work/artifacts"
  # A copy, so new inputs libFuzzer finds do not end up in the committed corpus.
  cp -R "$root/tests/fuzz/corpus/$name/." "$work/corpus/"
  args=(-max_total_time="$seconds" -rss_limit_mb=4096 -timeout=60 -print_final_stats=1
        -artifact_prefix="$work/artifacts/")
  [[ -f "$root/tests/fuzz/$name.dict" ]] && args+=(-dict="$root/tests/fuzz/$name.dict")
  echo "=== $t: ${seconds}s, corpus copy in $work/corpus, log in $work/fuzz.log"
  touch "$work/.started"
  set +e
  # shellcheck disable=SC2086
  "$build/tests/fuzz/$t" "${args[@]}" ${FUZZ_ARGS:-} "$work/corpus" >"$work/fuzz.log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::|Done |SUMMARY:|==[0-9]+==ERROR)' "$work/fuzz.log" || true
  if ((rc != 0)); then
    failed+=("$t")
    echo "!!! $t failed (exit $rc); see $work/fuzz.log"
    grep -E '^(artifact_prefix|Test unit written to)' "$work/fuzz.log" | sed 's/^/!!!   /' || true
    find "$work/artifacts" -type f -newer "$work/.started" | sed 's/^/!!!   crash input: /'
    echo "!!!   reproduce: $build/tests/fuzz/$t INPUT"
  else
    echo "=== $t: no crash in ${seconds}s"
  fi
done

if ((${#failed[@]})); then
  echo "run_fuzzers: findings in ${failed[*]}" >&2
  exit 1
fi
echo "run_fuzzers: no findings (${seconds}s per target)"
