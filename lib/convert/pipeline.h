// `bertq convert` and `bertq prepare` as one function: check every path, read
// the qconfig and the input once, plan, run PyTorch's passes, check the
// result, save, measure, and write the report files. The CLI only parses
// flags and renders the Report this returns.
#pragma once

#include <memory>
#include <string>

#include "base/error.h"
#include "plan/options.h"
#include "report/report.h"

namespace bertq {

// Runs the conversion `options` describe. Throws Error; on a failure nothing
// is written, but for a failed CI guard (Error(Coverage)), where the model is
// not written and the --report / --html files are, since CI needs them then.
// `command_line` is recorded in the report.
Report run_convert(const ConvertOptions& options, const std::string& command_line = "");

// What run_convert throws when a CI guard fails: Error(Coverage), with the
// report (sizes, modules, guards) for the summary a CI log needs. The model
// was not written; --report and --html were.
class GuardFailure : public Error {
 public:
  GuardFailure(Report report, const std::string& message, const std::string& hint)
      : Error(ErrorKind::Coverage, message, hint), report_(std::make_shared<const Report>(std::move(report))) {}
  const Report& report() const { return *report_; }

 private:
  std::shared_ptr<const Report> report_;  // shared: exceptions are copied
};

// Applies the coverage guards to a report's modules; returns one result per
// guard (failed ones with their message).
std::vector<GuardResult> check_guards(const Report& report, const ConvertOptions& options);

}  // namespace bertq
