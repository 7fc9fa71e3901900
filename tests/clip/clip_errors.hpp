#pragma once
// The message of the clip::Error a call throws, or "no error".
#include <functional>
#include <string>

#include "clip/error.hpp"

namespace docflow::testing {

inline std::string clip_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace docflow::testing
