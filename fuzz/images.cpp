// PNG and JPEG decoding, then the preprocessing a training step applies.
#include <string>

#include "clip/error.hpp"
#include "clip/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  try {
    clip::Image image = clip::decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz.img", 16);
    clip::center_crop(clip::resize_shorter_side(image, 16), 16);
  } catch (const clip::Error&) {
  }
  return 0;
}
