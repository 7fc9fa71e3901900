#pragma once
// CLIP's BPE tokenizer, token for token OpenAI's SimpleTokenizer: NFC (as
// ftfy), HTML unescaped twice, whitespace collapsed, lower-cased, split by
// CLIP's pattern with real Unicode letter and number classes (ICU), bytes
// mapped to unicode, merged by rank, with a cache.
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace clip {

class Tokenizer {
 public:
  static constexpr std::int64_t kStartOfText = 49406;
  static constexpr std::int64_t kEndOfText = 49407;

  // OpenAI's bpe_simple_vocab_16e6.txt.gz.
  static Tokenizer from_bpe_file(const std::string& path);
  // Hugging Face's vocab.json + merges.txt.
  static Tokenizer from_vocab_and_merges(const std::string& vocab_json, const std::string& merges_txt);
  // Either: a .txt.gz file, or a folder with vocab.json and merges.txt (a
  // Hugging Face model folder, or an artifact of ours).
  static Tokenizer load(const std::string& path);

  Tokenizer(const Tokenizer& other);
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The BPE ids of `text`, without start and end tokens; the split stops
  // once `max_tokens` ids are out (a word is merged whole).
  std::vector<std::int64_t> encode(const std::string& text,
                                   std::size_t max_tokens = static_cast<std::size_t>(-1)) const;
  // Start token, ids, end token, padded with 0 to `context_length`. Longer
  // texts are cut so that the end token stays last, or rejected (clip::Error)
  // when `truncate` is false. Only what can reach the context is encoded:
  // the first limits().text_bytes bytes (a longer text without `truncate` is
  // an error), up to the context's tokens.
  std::vector<std::int64_t> tokenize(const std::string& text, std::size_t context_length = 77, bool truncate = true) const;
  std::size_t vocab_size() const { return encoder_.size(); }

  // Writes vocab.json and merges.txt (for the fine-tuned model's artifact).
  void save(const std::string& dir) const;

 private:
  Tokenizer() = default;
  void build(const std::vector<std::pair<std::string, std::string>>& merges);
  std::string bpe(const std::string& token) const;

  std::unordered_map<std::string, std::int64_t> encoder_;
  std::unordered_map<std::string, int> ranks_;  // "first second" -> rank
  std::vector<std::pair<std::string, std::string>> merges_;
  std::string byte_encoder_[256];
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::string> cache_;
};

// The whole content of a gzip file; clip::Error names the file when it is
// missing or corrupt.
std::string read_gzip_file(const std::string& path);

// CLIP's text cleaning before the split: NFC, HTML unescape twice,
// whitespace collapsed and trimmed, lower-cased.
std::string clean_text(const std::string& text);

}  // namespace clip
