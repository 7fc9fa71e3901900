#pragma once
// A whole file mapped into memory as one LibTorch storage, so that tensors
// read from it can alias its bytes instead of being copied out one by one.
// Internal to docarray: binary_io.cpp reads version-2 document files with it.
#include <c10/core/Storage.h>

#include <cstddef>
#include <optional>
#include <string>

namespace docarray::detail {

struct MappedFile {
  const char* data = nullptr;
  std::size_t size = 0;
  // Owns the mapping: the file stays mapped while this or any tensor made
  // from it lives (a tensor holds its storage), and is unmapped after.
  c10::Storage storage;
};

// Maps `path` privately (copy-on-write: a tensor written in place changes
// this process's copy only, never the file). nullopt where mapping does not
// apply: not a regular file, or empty; the caller then reads it as a stream.
// Throws docarray::Error when the file cannot be opened or mapped.
std::optional<MappedFile> map_file(const std::string& path);

}  // namespace docarray::detail
