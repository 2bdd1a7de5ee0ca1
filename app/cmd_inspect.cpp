// `bertq inspect MODEL [--module PATH] [--graph] [--format json]` and
// `bertq diff A B`.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "commands.h"
#include "exit_codes.h"
#include "inspect/diff.h"
#include "inspect/inspect.h"

namespace bertq::app {

void setup_inspect(CLI::App& parent, Runner& runner) {
  struct Flags {
    InspectOptions options;
    std::string module;
    std::string format = "text";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd =
      parent.add_subcommand("inspect", "show what a float, prepared, debug or quantized model holds, module by module");
  cmd->add_option("model", f->options.path, "TorchScript model")->required();
  cmd->add_option("--module", f->module,
                  "one module: full name or unambiguous suffix (encoder.layer.0.attention.self.query)");
  cmd->add_flag("--graph", f->options.graph, "print the TorchScript graph (of --module if given)");
  cmd->add_option("--format", f->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->callback([f, &runner] {
    runner = [f] {
      if (!f->module.empty()) f->options.module = f->module;
      const Inspection ins = inspect_model(f->options);
      if (f->format == "json")
        print_inspection_json(ins, std::cout);
      else
        print_inspection(ins, std::cout);
      return int(kOk);
    };
  });
}

void setup_diff(CLI::App& parent, Runner& runner) {
  struct Flags {
    std::string a, b;
    std::string format = "text";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = parent.add_subcommand("diff", "compare the quantized weights of two models; exit 8 if they differ");
  cmd->add_option("a", f->a, "first model")->required();
  cmd->add_option("b", f->b, "second model")->required();
  cmd->add_option("--format", f->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->callback([f, &runner] {
    runner = [f] {
      const DiffResult r = diff_models(f->a, f->b);
      if (f->format == "json")
        print_diff_json(r, std::cout);
      else
        print_diff(r, std::cout);
      return r.identical() ? int(kOk) : int(kDiffer);
    };
  });
}

}  // namespace bertq::app
