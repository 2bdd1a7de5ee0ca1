// One file per subcommand (CLI11's subcom_in_files layout): each registers its
// options on the parent app and returns the function that runs it.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace bertq::app {

// Runs a parsed subcommand; returns the process exit code.
using Runner = std::function<int()>;

// The command line as given (shell-quoted), for reports.
const std::string& command_line();

// `bertq convert` and `bertq prepare` share their options and pipeline.
void setup_convert(CLI::App& parent, Runner& runner);
void setup_prepare(CLI::App& parent, Runner& runner);
void setup_inspect(CLI::App& parent, Runner& runner);
void setup_diff(CLI::App& parent, Runner& runner);
void setup_bench(CLI::App& parent, Runner& runner);
void setup_eval(CLI::App& parent, Runner& runner);
void setup_compare(CLI::App& parent, Runner& runner);
void setup_batch(CLI::App& parent, Runner& runner);
void setup_tune(CLI::App& parent, Runner& runner);

}  // namespace bertq::app
