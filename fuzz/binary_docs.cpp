// Binary document files (length-prefixed msgpack records), as read from disk
// or a socket.
#include <sstream>

#include "docarray/binary_io.hpp"
#include "docarray/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    docarray::BinaryReader reader(in, "fuzz.docs");
    docarray::Document doc{std::string()};
    while (reader.next(doc)) {
    }
  } catch (const docarray::Error&) {
    // Refused with a message: what every bad input must get.
  }
  return 0;
}
