// Reading and writing model files without losing anything: inputs are checked
// before LibTorch sees them, outputs appear complete or not at all.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace torch::jit {
struct Module;
}

namespace bertq {

// Throws Error(Model) saying what the file is when it is not a TorchScript
// archive: empty, a directory, an eager torch.save pickle or zip, a
// state_dict, a truncated zip, text, ...
void check_torchscript_archive(const std::string& path);

// check_torchscript_archive, then torch::jit::load on CPU. LibTorch's own
// exceptions become Error(Model) naming the file.
torch::jit::Module load_model(const std::string& path);

// load_model, also returning the archive's extra file `name` ("" if absent).
torch::jit::Module load_model(const std::string& path, const std::string& extra_name, std::string* extra);

// Writes `model` with torch.jit.save's format. The archive is written under a
// temporary name in the destination folder and renamed into place, so a
// failure leaves no partial file. The archive's root folder is named after
// `path`, exactly as torch.jit.save(model, path) names it.
// `extra_files` become `extra/NAME` records, as torch.jit.save's _extra_files.
void save_model_atomic(const torch::jit::Module& model, const std::string& path,
                       const std::map<std::string, std::string>& extra_files = {});

// True if both paths name the same file (also through links). A path that
// does not exist yet is the same as nothing.
bool same_file(const std::string& a, const std::string& b);

uint64_t file_size(const std::string& path);

// Installs SIGINT/SIGTERM/SIGHUP handlers that delete the temporary file of a
// save in progress, then let the signal terminate the process as usual.
void install_cleanup_on_signals();

}  // namespace bertq
