// Binary document files (length-prefixed msgpack records), as read from disk
// or a socket: each input is read twice, as a stream (payloads copied) and
// as a mapped file (payloads aliased where they lie), and every tensor's
// bytes are touched, so a tensor that reaches past its record or the
// mapping is caught by the sanitizer.
#include <unistd.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "docarray/binary_io.hpp"
#include "docarray/error.hpp"

namespace {

void touch(const docarray::Document& doc) {
  volatile unsigned char sink = 0;
  for (const at::Tensor* t : {&doc.tensor, &doc.embedding})
    if (t->defined() && t->numel() > 0) {
      const auto* p = static_cast<const unsigned char*>(t->data_ptr());
      for (std::size_t i = 0; i < t->nbytes(); i += 97) sink = sink ^ p[i];
      sink = sink ^ p[t->nbytes() - 1];
    }
  for (const auto& c : doc.chunks) touch(c);
  for (const auto& m : doc.matches) touch(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  std::istringstream in(bytes);
  try {
    docarray::BinaryReader reader(in, "fuzz.docs");
    docarray::Document doc{std::string()};
    while (reader.next(doc)) touch(doc);
  } catch (const docarray::Error&) {
  }
  static const std::string path = "/tmp/fuzz-binary-docs-" + std::to_string(::getpid()) + ".docs";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  try {
    docarray::BinaryReader reader(path);
    docarray::Document doc{std::string()};
    while (reader.next(doc)) touch(doc);
  } catch (const docarray::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
