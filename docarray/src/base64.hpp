#pragma once
#include <string>

namespace docarray::detail {
std::string base64_encode(const std::string& bytes);
// Throws docarray::Error on a character outside the alphabet or bad padding.
std::string base64_decode(const std::string& text);
}  // namespace docarray::detail
