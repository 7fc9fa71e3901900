// JSON Lines documents, line by line, and each document written back.
#include <sstream>

#include "docarray/error.hpp"
#include "docarray/jsonl_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    docarray::JsonlReader reader(in, "fuzz.jsonl");
    docarray::Document doc{std::string()};
    while (reader.next(doc)) docarray::from_json(docarray::to_json(doc));
  } catch (const docarray::Error&) {
  }
  return 0;
}
