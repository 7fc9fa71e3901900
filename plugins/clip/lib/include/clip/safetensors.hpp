#pragma once
// The safetensors format, read and written here: an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}} with an
// optional __metadata__, then the tensors' bytes. Reading memory-maps the
// file; every check that keeps a bad file from becoming a crash is made:
// header size capped, offsets in bounds and tiling the buffer exactly, sizes
// matching dtype and shape, no duplicate names.
// ATen's Tensor alone, not <torch/torch.h>: every file that includes this
// would otherwise pay that header's 8-9 s of template instantiation (GCC 12).
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace clip {

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;  // views into the mapping (kept alive by them)
  std::map<std::string, std::string> metadata;
};

SafetensorsFile read_safetensors(const std::string& path);
// Tensors are written contiguous, in name order, as F32/F16/BF16/... by dtype.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace clip
