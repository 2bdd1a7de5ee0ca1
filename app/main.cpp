// bertq: graph-mode dynamic quantization of TorchScript models, without Python.
// Parse, run, print, exit code; the work is in lib/.
#include <c10/util/Exception.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <csignal>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>
#include <streambuf>
#include <string_view>

#include "base/files.h"
#include "base/text.h"
#include "commands.h"
#include "exit_codes.h"
#include "jit/engines.h"
#include "jit/torch_compat.h"
#include "run/runtime.h"

namespace bertq::app {

namespace {
std::string g_command_line;
}

const std::string& command_line() { return g_command_line; }

}  // namespace bertq::app

// Runs before the initialisers of every shared library (an executable's
// .preinit_array does), so it sees the signal dispositions bertq was started
// with: LibTorch 2.x replaces an ignored SIGHUP with a handler of its own as
// it loads, and `nohup bertq ...` must still ignore it.
extern "C" void bertq_record_signals_at_start(int, char**, char**) { bertq::record_signals_at_start(); }
__attribute__((section(".preinit_array"),
               used)) static void (*const bertq_preinit)(int, char**, char**) = bertq_record_signals_at_start;

namespace {

// stdout and stderr carry paths, module names and qconfig keys from the
// user's files; a name like "evil\e]0;PWNED\a.pt" must not retitle or clear
// the terminal. Every byte written through std::cout and std::cerr (spdlog
// too) passes append_terminal_safe, the one escaper for streams; messages
// escape their values with printable() as well, newlines included.
class TerminalSafeBuf : public std::streambuf {
 public:
  explicit TerminalSafeBuf(std::streambuf* out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    pending_.push_back(traits_type::to_char_type(c));
    if (c == '\n' && !pass(false)) return traits_type::eof();
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    pending_.append(s, static_cast<size_t>(n));
    if ((pending_.size() > (1 << 16) || std::memchr(s, '\n', static_cast<size_t>(n))) && !pass(false)) return 0;
    return n;
  }
  int sync() override { return pass(true) && out_->pubsync() == 0 ? 0 : -1; }

 private:
  bool pass(bool final) {
    std::string safe;
    const size_t taken = bertq::append_terminal_safe(safe, pending_, final);
    pending_.erase(0, taken);
    return out_->sputn(safe.data(), static_cast<std::streamsize>(safe.size())) ==
           static_cast<std::streamsize>(safe.size());
  }
  std::streambuf* out_;
  std::string pending_;
};

// PyTorch's TORCH_WARN (e.g. "debug option for add_scalar and mul_scalar is
// not supported") would go to glog with its own prefix; route it through
// bertq's log instead, in bertq's voice, each message once (some fire on
// every forward).
void forward_warning(const std::string& msg) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mutex);
  if (seen.insert(msg).second) spdlog::warn("PyTorch: {}", bertq::printable(msg));
}

std::string shell_quoted(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string version_text() {
  const std::string why_not = bertq::full_range_refusal(bertq::Engine::OneDNN);
  std::string engines;
  for (bertq::Engine e : bertq::available_engines()) engines += (engines.empty() ? "" : ", ") + to_string(e);
  std::string libtorch = std::string("LibTorch ") + BERTQ_LIBTORCH_VERSION;
  const std::string package = BERTQ_LIBTORCH_PACKAGE;
  if (!package.empty()) libtorch += " (" + package + "; its headers say " + TORCH_VERSION + ")";
  return std::string("bertq ") + BERTQ_VERSION + "\n" + libtorch + "\nquantized engines: " + engines + " (default " +
         to_string(bertq::default_engine()) + ")\nBLAS: " + bertq::describe(bertq::blas_info()) +
         "\nfull 8-bit activations with onednn: " + (why_not.empty() ? "exact here" : "refused here: " + why_not);
}

// What a parse error means when the cause is a mistyped subcommand or flag:
// CLI11 says "A subcommand is required" or "arguments were not expected: 8bit
// --embedings", so bertq names the word it did not know, and what was meant,
// first. Empty `error` keeps CLI11's message.
struct Mistake {
  std::string error, hint;
};

Mistake diagnose_mistake(CLI::App& app, int argc, char** argv) {
  if (argc < 2) return {};
  std::vector<std::string> subcommands;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    subcommands.push_back(sub->get_name());
  const std::string first = argv[1];
  if (first.rfind("-", 0) != 0 && std::find(subcommands.begin(), subcommands.end(), first) == subcommands.end()) {
    const std::string error = "unknown subcommand " + bertq::quoted_value(first);
    if (auto near = bertq::closest(first, subcommands)) return {error + ": did you mean `bertq " + *near + "`?", ""};
    return {error, "subcommands: " + bertq::join(subcommands, ", ")};
  }
  const CLI::App* sub = nullptr;
  for (const CLI::App* s : app.get_subcommands([](CLI::App*) { return true; }))
    if (s->get_name() == first) sub = s;
  if (!sub) return {};
  std::vector<std::string> flags;
  for (const CLI::Option* opt : sub->get_options()) {
    for (const auto& n : opt->get_lnames()) flags.push_back("--" + n);
    for (const auto& n : opt->get_snames()) flags.push_back("-" + n);
  }
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    if (a.rfind("-", 0) != 0 || a == "-") continue;
    const std::string name = a.substr(0, a.find('='));
    if (std::find(flags.begin(), flags.end(), name) != flags.end()) continue;
    // A negative number is a value, not a flag.
    if (name.size() > 1 && (std::isdigit(static_cast<unsigned char>(name[1])) || name[1] == '.')) continue;
    const std::string error = "unknown flag " + name + " for `bertq " + first + "`";
    if (auto near = bertq::closest(name, flags)) return {error + ": did you mean " + *near + "?", ""};
    return {error, "run `bertq " + first + " --help` for its flags"};
  }
  return {};
}

// Each subcommand's help ends with its own example and the exit codes it can
// give (a subcommand would otherwise show the top level's convert example).
void set_footers(CLI::App& app) {
  struct Footer {
    const char* name;
    const char* examples;
    const char* exits;
  };
  static const Footer kFooters[] = {
      {"convert", "bertq convert bert.pt bert_int8.pt --qconfig q.json --report r.json",
       "0 ok, 2 usage, 3 qconfig, 4 input model, 5 write, 6 cannot run here, 7 CI guard"},
      {"prepare",
       "bertq prepare bert.pt bert_observed.pt --qconfig q.json\n  bertq convert bert_observed.pt bert_int8.pt",
       "0 ok, 2 usage, 3 qconfig, 4 input model, 5 write"},
      {"inspect", "bertq inspect bert_int8.pt --module encoder.layer.0.attention.self.query", "0 ok, 2 usage, 4 model"},
      {"diff", "bertq diff bert_int8.pt bert_int8_again.pt", "0 same weights, 8 they differ, 2 usage, 4 model"},
      {"bench", "bertq bench bert.pt bert_int8.pt --threads 1", "0 ok, 2 usage, 4 model, 6 cannot run here"},
      {"eval", "bertq eval bert_int8.pt --data glue_data/MRPC --vocab vocab.txt",
       "0 ok, 2 usage, 4 model or data, 6 cannot run here"},
      {"compare", "bertq compare bert.pt bert_int8.pt --tokenized dev.jsonl --max-disagreement 0.01",
       "0 ok, 2 usage, 4 model or data, 6 cannot run here, 7 past --max-disagreement"},
      {"tune", "bertq tune bert.pt bert_tuned.pt --tolerance 0.03 --tokenized dev.jsonl --qconfig-out tuned.json",
       "0 ok, 2 usage, 4 model or data, 5 write, 10 only float meets the tolerance"},
      {"batch", "bertq batch jobs.json --jobs 2 --summary summary.json",
       "0 all converted or up to date, 9 a job failed, 3 bad manifest, 2 usage"},
  };
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    for (const Footer& f : kFooters)
      if (sub->get_name() == f.name)
        sub->footer(std::string("example:\n  ") + f.examples + "\n\nexit codes: " + f.exits +
                    ", 128+N stopped by signal N (docs/cli.md)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bertq::app;
  // The commands that run models get OpenBLAS's kernel for this CPU, which
  // may take a new process image: before anything else is set up.
  if (argc > 1) {
    const std::string_view command = argv[1];
    if (command == "bench" || command == "eval" || command == "compare" || command == "tune")
      bertq::choose_openblas_kernel(argv);
  }
  for (int i = 0; i < argc; ++i) g_command_line += (i ? " " : "") + shell_quoted(argv[i]);
  // Both streams escape what a terminal would obey; logs go to stderr through
  // std::cerr (so through the same escaper), stdout carries results.
  static TerminalSafeBuf safe_out(std::cout.rdbuf()), safe_err(std::cerr.rdbuf());
  std::cout.rdbuf(&safe_out);
  std::cerr.rdbuf(&safe_err);
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("bertq", std::make_shared<spdlog::sinks::ostream_sink_mt>(std::cerr, true)));
  spdlog::set_pattern("bertq: %l: %v");
  // A conversion stopped by a signal deletes its temporary output and ends
  // with status 128 + the signal number; a full disk (or a file size limit)
  // is a write error, not a silent kill.
  bertq::install_cleanup_on_signals();
  std::signal(SIGXFSZ, SIG_IGN);
  static bertq::compat::WarningForwarder forward_warnings(forward_warning);
  bertq::compat::set_warning_handler(&forward_warnings);

  CLI::App app{
      "bertq: dynamic quantization of TorchScript models (int8, fp16, weight-only), "
      "bit-identical to PyTorch's quantize_dynamic_jit"};
  app.set_version_flag("--version", version_text);
  app.require_subcommand(1);
  app.footer(
      "example:\n  bertq convert bert.pt bert_int8.pt --qconfig q.json\n\n"
      "exit codes: 0 ok; 1 internal error; 2 usage; 3 qconfig; 4 input model; 5 cannot write; 6 cannot run "
      "here; 7 CI guard; 8 diff: models differ; 9 batch: a job failed; 10 tune: only float meets the tolerance; 128+N "
      "stopped by signal N (130 SIGINT, "
      "143 SIGTERM). docs/cli.md has the details.");
  Runner runner;
  setup_convert(app, runner);
  setup_prepare(app, runner);
  setup_inspect(app, runner);
  setup_diff(app, runner);
  setup_bench(app, runner);
  setup_eval(app, runner);
  setup_compare(app, runner);
  setup_tune(app, runner);
  setup_batch(app, runner);
  set_footers(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const Mistake m = diagnose_mistake(app, argc, argv);
    std::cerr << "bertq: error: " << bertq::printable(m.error.empty() ? std::string(e.what()) : m.error) << "\n";
    if (m.error.empty() || !m.hint.empty())
      std::cerr << "hint: "
                << (m.hint.empty() ? "run `bertq --help` or `bertq SUBCOMMAND --help`" : bertq::printable(m.hint))
                << "\n";
    return kUsage;
  }

  int code = kOk;
  try {
    code = runner();
    // A report that did not reach stdout (a full disk, a closed pipe) is a
    // failure, not a success with nothing printed.
    std::cout.flush();
    if (!std::cout) throw bertq::Error(bertq::ErrorKind::Io, "cannot write to standard output");
  } catch (const bertq::Error& e) {
    std::cerr << "bertq: error: " << e.what() << "\n";
    if (!e.hint().empty()) std::cerr << "hint: " << e.hint() << "\n";
    return exit_code_for(e.kind());
  } catch (const c10::Error& e) {
    std::cerr << "bertq: internal error: " << bertq::printable(bertq::first_line(e.what_without_backtrace())) << "\n";
    return kInternal;
  } catch (const std::exception& e) {
    std::cerr << "bertq: internal error: " << bertq::printable(e.what()) << "\n";
    return kInternal;
  }
  return code;
}
