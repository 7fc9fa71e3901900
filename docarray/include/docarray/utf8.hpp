#pragma once
// UTF-8 checks for text that crosses into JSON (status files, JSON Lines,
// HTTP answers): JSON holds only valid UTF-8, so an error message that quotes
// a broken byte must not itself become an error that hides the first one.
#include <cstddef>
#include <string>
#include <string_view>

namespace docarray {

// The offset of the first byte that is not part of a valid UTF-8 sequence
// (overlong forms, surrogates and code points past U+10FFFF are invalid), or
// std::string_view::npos when the whole text is valid.
std::size_t invalid_utf8_at(std::string_view text);

// `text` with every invalid byte written as \xNN, so it is valid UTF-8 and
// still shows what was there.
std::string escape_invalid_utf8(std::string_view text);

}  // namespace docarray
