// Loading and saving TorchScript models without losing anything: inputs are
// checked (ArchiveFile) before LibTorch reads them, outputs appear complete
// or not at all.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "archive/archive_file.h"
#include "base/files.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

// Loads `file` through its open descriptor, on CPU. LibTorch's own
// exceptions become Error(Model) naming the file and what bertq makes of
// them. `extra_name`, if given, is read into *extra ("" if absent).
torch::jit::Module load_model(const ArchiveFile& file, const std::string& extra_name = "",
                              std::string* extra = nullptr);

// Opens, checks and loads `path` (for inspect, diff, bench, eval).
torch::jit::Module load_model(const std::string& path, const std::string& extra_name = "",
                              std::string* extra = nullptr);

// Writes `model` with torch.jit.save's format to `out.target`. The archive is
// written under a temporary name in the destination folder and renamed into
// place, so a failure leaves no partial file. The archive's root folder is
// named after the output's file name, exactly as torch.jit.save(model, path)
// names it. `extra_files` become `extra/NAME` records, as _extra_files do.
void save_model_atomic(const torch::jit::Module& model, const OutputPath& out,
                       const std::map<std::string, std::string>& extra_files = {});

// Writes `model` to `file` as it is (no temporary, no rename): for a file
// inside a TempDir, such as a dry run's copy. `shown` names it in messages.
void save_model_to(const torch::jit::Module& model, const std::string& file, const std::string& shown,
                   const std::map<std::string, std::string>& extra_files = {});

}  // namespace bertq
