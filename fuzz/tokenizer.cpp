// CLIP's tokenizer on any bytes, with and without truncation. The vocabulary
// is the real one, from ../shared (DOCFLOW_SHARED_DIR) or $DOCFLOW_FUZZ_VOCAB;
// without it there is nothing to fuzz and every input passes.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "clip/error.hpp"
#include "clip/tokenizer.hpp"

namespace {
const clip::Tokenizer* tokenizer() {
  static std::unique_ptr<clip::Tokenizer> tok = [] {
    const char* env = std::getenv("DOCFLOW_FUZZ_VOCAB");
    std::string path = env ? env : std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
    if (!std::filesystem::exists(path)) return std::unique_ptr<clip::Tokenizer>();
    return std::make_unique<clip::Tokenizer>(clip::Tokenizer::load(path));
  }();
  return tok.get();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const clip::Tokenizer* tok = tokenizer();
  if (!tok) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    tok->tokenize(text);
    tok->tokenize(text, 16, false);
  } catch (const clip::Error&) {
  }
  return 0;
}
