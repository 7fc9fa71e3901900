#pragma once
#include <stdexcept>

namespace clip {
// Everything the CLIP library refuses: bad weights, configs, images, text.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
}  // namespace clip
