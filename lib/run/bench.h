// `bertq bench`: latency of one or more models on the same dummy inputs,
// built like the PyTorch tutorial's ids_tensor, in one process.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "run/profile.h"
#include "run/runtime.h"

namespace bertq {

enum class Engine;

struct BenchOptions {
  std::vector<std::string> models;
  std::string inputs_file;  // --inputs: the model's own inputs (its first `batch` rows), instead of dummy ids
  int64_t batch = 8;
  int64_t seq = 128;
  int64_t vocab = 2;  // input ids are drawn from [0, vocab), as the tutorial's ids_tensor(…, 2)
  int threads = 1;
  int iters = 10;
  int warmup = 2;
  std::optional<Engine> engine;
  uint64_t seed = 0;
  bool tune_runtime = true;  // false: LibTorch's default allocator and BLAS threads
  bool profile = false;      // after the timed rounds, profile each model (run/profile.h)
};

struct ModelTiming {
  std::string model;
  std::string kind;        // "float", "quantized", "debug", "prepared"
  std::vector<double> ms;  // each timed iteration
  double mean = 0, median = 0, p90 = 0, min = 0;
  double ratio = 1;  // median / the first model's median
};

struct BenchResult {
  BenchOptions options;
  RuntimeInfo runtime;
  std::vector<std::string> inputs;  // forward's argument names, in order
  std::string inputs_described;     // --inputs: "x: Float [8, 16]" for each argument
  std::vector<ModelTiming> models;
  std::vector<ModelProfile> profiles;  // with --profile, one per model
};

// `progress(done, total, model)` is called after each iteration.
BenchResult run_bench(const BenchOptions& options,
                      const std::function<void(int, int, const std::string&)>& progress = {});

void print_bench(const BenchResult& result, std::ostream& out);
void print_bench_json(const BenchResult& result, std::ostream& out);

}  // namespace bertq
