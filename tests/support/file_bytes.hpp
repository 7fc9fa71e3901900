#pragma once
// A whole file's bytes ("" when it cannot be read: the tests compare it with
// what they expect, which then names the file's absence).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace docflow::testing {

inline std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace docflow::testing
