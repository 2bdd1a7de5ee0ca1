// A check of TorchScript's pickles (data.pkl, constants.pkl) before LibTorch
// unpickles them. LibTorch trusts the pickle: a storage declares its element
// count and gets whatever bytes its record holds, and a tensor's sizes and
// strides are set without a bounds check, so a record shorter than its
// tensor is read past its end. This walks the pickle's opcodes the way
// LibTorch's Unpickler does, without building any object, and collects every
// storage and tensor so they can be checked against the zip records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bertq {

struct PickledStorage {
  std::string key;       // record name under the archive's folder ("0" -> data/0)
  int64_t numel = 0;     // elements, as the pickle declares
  int64_t itemsize = 0;  // bytes per element of its dtype
  std::string dtype;     // "Float", "QInt8", ... (the storage class name without "Storage")
};

struct PickledTensor {
  size_t storage = 0;  // index into PickleScan::storages
  int64_t offset = 0;  // in elements
  std::vector<int64_t> sizes, strides;
};

// A tensor quantized per channel: its scales and zero points are tensors of
// their own, with one value per channel along `axis`.
struct PickledPerChannel {
  size_t tensor = 0;  // indices into PickleScan::tensors
  size_t scales = 0;
  size_t zero_points = 0;
  int64_t axis = 0;
};

struct PickleScan {
  std::vector<PickledStorage> storages;
  std::vector<PickledTensor> tensors;
  std::vector<PickledPerChannel> per_channel;
  bool has_sparse = false;  // torch._utils._rebuild_sparse_tensor appears
};

// Scans one pickle. Throws Error(Model), naming `source` ("model.pt: data.pkl")
// and the byte offset, for anything LibTorch's Unpickler would misread or
// crash on: truncated data, unknown opcodes, stack or memo misuse, a storage
// tuple of the wrong shape, an unknown storage dtype, a tensor whose sizes or
// strides are negative or do not fit in 64 bits, values nested more than
// 1000 deep (LibTorch builds and destroys them recursively) or holding
// themselves. Nothing in the scan recurses over the input's nesting.
PickleScan scan_pickle(std::string_view bytes, const std::string& source);

// The number of elements a tensor reaches into its storage (offset + the
// farthest element + 1, or 0 for an empty tensor); -1 if that overflows.
int64_t storage_extent(const PickledTensor& tensor);

}  // namespace bertq
