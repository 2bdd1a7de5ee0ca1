// bertq: graph-mode dynamic quantization of TorchScript models, without Python.
// Parse, run, print, exit code; the work is in lib/.
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <mutex>
#include <set>

#include "commands.h"
#include "exit_codes.h"
#include "model_file.h"

namespace {

// PyTorch's TORCH_WARN (e.g. "debug option for add_scalar and mul_scalar is
// not supported") would go to glog with its own prefix; route it through
// bertq's log instead, in bertq's voice, each message once (some fire on
// every forward).
class ForwardWarnings : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (seen_.insert(msg).second) spdlog::warn("PyTorch: {}", msg);
  }

 private:
  std::mutex mutex_;
  std::set<std::string> seen_;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace bertq::app;
  // Logs go to stderr; stdout carries results.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bertq"));
  spdlog::set_pattern("bertq: %l: %v");
  // A conversion stopped by a signal deletes its temporary output; a full disk
  // (or a file size limit) is a write error, not a silent kill.
  bertq::install_cleanup_on_signals();
  std::signal(SIGXFSZ, SIG_IGN);
  static ForwardWarnings forward_warnings;
  c10::Warning::set_warning_handler(&forward_warnings);

  CLI::App app{"bertq: dynamic quantization of TorchScript models (int8, fp16, weight-only), "
               "bit-identical to PyTorch's quantize_dynamic_jit"};
  app.set_version_flag("--version", std::string("bertq ") + BERTQ_VERSION);
  app.require_subcommand(1);
  Runner runner;
  setup_convert(app, runner);
  setup_prepare(app, runner);
  setup_inspect(app, runner);
  setup_diff(app, runner);
  setup_bench(app, runner);
  setup_eval(app, runner);
  setup_compare(app, runner);
  setup_batch(app, runner);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "bertq: error: " << e.what() << "\n";
    std::cerr << "hint: run `bertq --help` or `bertq SUBCOMMAND --help`\n";
    return kUsage;
  }

  try {
    return runner();
  } catch (const bertq::Error& e) {
    std::cerr << "bertq: error: " << e.what() << "\n";
    if (!e.hint().empty()) std::cerr << "hint: " << e.hint() << "\n";
    return exit_code_for(e.kind());
  } catch (const c10::Error& e) {
    std::cerr << "bertq: internal error: " << e.what_without_backtrace() << "\n";
    return kInternal;
  } catch (const std::exception& e) {
    std::cerr << "bertq: internal error: " << e.what() << "\n";
    return kInternal;
  }
}
