// A model folder's files: the first byte picks safetensors (even) or
// config.json (odd), the rest is the file's content.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "clip/config.hpp"
#include "clip/error.hpp"
#include "clip/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0) return 0;
  // Both readers take a path (safetensors maps the file).
  static const std::string path = "/tmp/docflow-fuzz-model-" + std::to_string(::getpid());
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  try {
    if (data[0] % 2 == 0) clip::read_safetensors(path);
    else clip::parameter_count(clip::load_config(path));
  } catch (const clip::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
