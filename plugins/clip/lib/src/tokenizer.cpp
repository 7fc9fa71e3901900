#include "clip/tokenizer.hpp"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <queue>
#include <sstream>
#include <string_view>

#include "clip/error.hpp"
#include "docarray/limits.hpp"

namespace clip {
namespace {

std::string utf8(UChar32 cp) {
  icu::UnicodeString s(cp);
  std::string out;
  s.toUTF8String(out);
  return out;
}

// OpenAI's bytes_to_unicode(), in its own order (printable bytes first).
std::vector<std::pair<int, std::string>> bytes_to_unicode() {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + n++);
    }
  }
  std::vector<std::pair<int, std::string>> out;
  for (std::size_t i = 0; i < bs.size(); ++i) out.emplace_back(bs[i], utf8(cs[i]));
  return out;
}

bool is_letter(UChar32 c) { return (U_GET_GC_MASK(c) & U_GC_L_MASK) != 0; }
bool is_number(UChar32 c) { return (U_GET_GC_MASK(c) & U_GC_N_MASK) != 0; }
// Python's \s on str: White_Space plus the ASCII separators \x1c-\x1f.
bool is_space(UChar32 c) { return u_isUWhiteSpace(c) || (c >= 0x1c && c <= 0x1f); }

// html.unescape for the numeric forms and the entities text in the wild uses.
std::string html_unescape(const std::string& s) {
  static const std::pair<const char*, const char*> kNamed[] = {
      {"amp", "&"},      {"lt", "<"},        {"gt", ">"},       {"quot", "\""},      {"apos", "'"},
      {"nbsp", "\xC2\xA0"}, {"copy", "\xC2\xA9"}, {"reg", "\xC2\xAE"}, {"hellip", "\xE2\x80\xA6"},
      {"mdash", "\xE2\x80\x94"}, {"ndash", "\xE2\x80\x93"}, {"rsquo", "\xE2\x80\x99"}, {"lsquo", "\xE2\x80\x98"},
      {"rdquo", "\xE2\x80\x9D"}, {"ldquo", "\xE2\x80\x9C"}, {"eacute", "\xC3\xA9"}, {"euro", "\xE2\x82\xAC"}};
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    // An entity is at most 10 characters: look no further (searching to the
    // end of the text for every '&' made this quadratic).
    std::size_t semi = std::string_view(s).substr(i, 11).find(';');
    if (semi != std::string::npos) {
      semi += i;
      std::string name = s.substr(i + 1, semi - i - 1);
      if (!name.empty() && name[0] == '#') {
        try {
          long cp = name.size() > 1 && (name[1] == 'x' || name[1] == 'X') ? std::stol(name.substr(2), nullptr, 16)
                                                                         : std::stol(name.substr(1));
          if (cp > 0 && cp <= 0x10FFFF) {
            out += utf8(static_cast<UChar32>(cp));
            i = semi + 1;
            continue;
          }
        } catch (const std::exception&) {
        }
      }
      bool found = false;
      for (const auto& [n, v] : kNamed)
        if (name == n) {
          out += v;
          i = semi + 1;
          found = true;
          break;
        }
      if (found) continue;
    }
    out += s[i++];
  }
  return out;
}

}  // namespace

std::string read_gzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open " + path);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) throw Error(path + ": corrupt gzip data: " + msg);
  return out;
}

std::string clean_text(const std::string& text) {
  UErrorCode status = U_ZERO_ERROR;
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(text);
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_SUCCESS(status)) u = nfc->normalize(u, status);
  std::string s;
  u.toUTF8String(s);
  s = html_unescape(html_unescape(s));
  // Collapse whitespace runs into one space and trim.
  std::string collapsed;
  bool pending_space = false;
  const char* p = s.data();
  const int32_t len = static_cast<int32_t>(s.size());
  for (int32_t i = 0; i < len;) {
    int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, len, c);
    if (c >= 0 && is_space(c)) {
      pending_space = !collapsed.empty();
      continue;
    }
    if (pending_space) collapsed += ' ';
    pending_space = false;
    collapsed.append(p + start, static_cast<std::size_t>(i - start));
  }
  std::string lower;
  icu::UnicodeString::fromUTF8(collapsed).toLower(icu::Locale::getRoot()).toUTF8String(lower);
  return lower;
}

Tokenizer Tokenizer::load(const std::string& path) {
  if (path.empty()) throw Error("no vocabulary given: bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json and merges.txt");
  const std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) return from_vocab_and_merges((p / "vocab.json").string(), (p / "merges.txt").string());
  return from_bpe_file(path);
}

Tokenizer Tokenizer::from_bpe_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("tokenizer vocabulary not found: " + path);
  std::string text = read_gzip_file(path);
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // the header ("#version: 0.2")
  // OpenAI keeps merges[1 : 49152 - 256 - 2 + 1]: 48894 of them.
  for (int i = 0; i < 48894 && std::getline(lines, line); ++i) {
    auto space = line.find(' ');
    if (space == std::string::npos) throw Error(path + ": line " + std::to_string(i + 2) + " is not a merge: " + line);
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  if (merges.size() != 48894)
    throw Error(path + ": expected 48894 merges, found " + std::to_string(merges.size()) + " (truncated file?)");
  Tokenizer t;
  t.build(merges);
  return t;
}

Tokenizer Tokenizer::from_vocab_and_merges(const std::string& vocab_json, const std::string& merges_txt) {
  Tokenizer t;
  std::ifstream merges_file(merges_txt);
  if (!merges_file) throw Error("cannot read " + merges_txt);
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  while (std::getline(merges_file, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.find(' ');
    if (space == std::string::npos) throw Error(merges_txt + ": not a merge: " + line);
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  t.build(merges);
  std::ifstream vf(vocab_json);
  if (!vf) throw Error("cannot read " + vocab_json);
  t.encoder_.clear();
  try {
    const nlohmann::json vocab = nlohmann::json::parse(vf);  // named: items() must not outlive it
    for (const auto& [k, v] : vocab.items()) t.encoder_[k] = v.get<std::int64_t>();
  } catch (const std::exception& e) {
    throw Error(vocab_json + ": " + e.what());
  }
  return t;
}

Tokenizer::Tokenizer(const Tokenizer& o)
    : encoder_(o.encoder_), ranks_(o.ranks_), merges_(o.merges_) {
  for (int i = 0; i < 256; ++i) byte_encoder_[i] = o.byte_encoder_[i];
}

void Tokenizer::build(const std::vector<std::pair<std::string, std::string>>& merges) {
  merges_ = merges;
  std::vector<std::string> vocab;
  for (const auto& [byte, s] : bytes_to_unicode()) {
    byte_encoder_[byte] = s;
    vocab.push_back(s);
  }
  const std::size_t n = vocab.size();
  for (std::size_t i = 0; i < n; ++i) vocab.push_back(vocab[i] + "</w>");
  for (std::size_t i = 0; i < merges.size(); ++i) {
    vocab.push_back(merges[i].first + merges[i].second);
    ranks_[merges[i].first + " " + merges[i].second] = static_cast<int>(i);
  }
  vocab.push_back("<|startoftext|>");
  vocab.push_back("<|endoftext|>");
  for (std::size_t i = 0; i < vocab.size(); ++i) encoder_[vocab[i]] = static_cast<std::int64_t>(i);
}

// OpenAI's loop merges, again and again, every occurrence of the best-ranked
// adjacent pair, left to right: quadratic in a word's length. The same merges
// in O(n log n): symbols in a linked list, candidate pairs in a heap ordered
// by (rank, position). A pair a merge creates never has the rank being
// merged (its text is longer than either half), so taking same-rank pairs
// left to right gives exactly OpenAI's result.
std::string Tokenizer::bpe(const std::string& token) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(token);
    if (it != cache_.end()) return it->second;
  }
  // Split into unicode characters; the last one carries </w>.
  std::vector<std::string> word;
  const char* p = token.data();
  const int32_t len = static_cast<int32_t>(token.size());
  for (int32_t i = 0; i < len;) {
    int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, len, c);
    word.emplace_back(p + start, static_cast<std::size_t>(i - start));
  }
  if (word.empty()) return token + "</w>";
  word.back() += "</w>";
  const std::size_t n = word.size();
  std::vector<std::size_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = i - 1;  // wraps for the first: never read, alive checks guard it
    next[i] = i + 1;
  }
  struct Candidate {
    int rank;
    std::size_t left;
    std::string first, second;  // the pair's texts when it was pushed
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](std::size_t left) {
    if (left >= n || next[left] >= n) return;
    auto it = ranks_.find(word[left] + " " + word[next[left]]);
    if (it != ranks_.end()) heap.push({it->second, left, word[left], word[next[left]]});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    const std::size_t l = c.left, r = next[l];
    // Stale: a symbol of the pair has merged with another since it was pushed.
    if (!alive[l] || r >= n || word[l] != c.first || word[r] != c.second) continue;
    word[l] += word[r];
    alive[r] = false;
    next[l] = next[r];
    if (next[r] < n) prev[next[r]] = l;
    if (l > 0 && alive[l] && prev[l] < n) push(prev[l]);
    push(l);
  }
  std::string out;
  for (std::size_t i = 0; i < n; i = next[i]) out += (out.empty() ? "" : " ") + word[i];
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() < 100000) cache_[token] = out;
  return out;
}

std::vector<std::int64_t> Tokenizer::encode(const std::string& text, std::size_t max_tokens) const {
  const std::string s = clean_text(text);
  std::vector<std::int64_t> ids;
  auto emit = [&](const std::string& piece) {
    std::string mapped;
    for (unsigned char b : piece) mapped += byte_encoder_[b];
    std::istringstream parts(bpe(mapped));
    std::string part;
    while (parts >> part) {
      auto it = encoder_.find(part);
      if (it == encoder_.end()) throw Error("tokenizer: '" + part + "' is not in the vocabulary");
      ids.push_back(it->second);
    }
  };
  static const char* kSpecial[] = {"<|startoftext|>", "<|endoftext|>"};
  static const char* kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  const char* p = s.data();
  const int32_t len = static_cast<int32_t>(s.size());
  for (int32_t i = 0; i < len && ids.size() < max_tokens;) {
    // CLIP's pattern, alternatives in order: special tokens, contractions,
    // letters+, one number, [^\s\p{L}\p{N}]+; anything else (whitespace) is skipped.
    bool matched = false;
    for (const char* sp : kSpecial) {
      std::size_t n = std::strlen(sp);
      if (s.compare(static_cast<std::size_t>(i), n, sp) == 0) {
        ids.push_back(encoder_.at(sp));
        i += static_cast<int32_t>(n);
        matched = true;
        break;
      }
    }
    if (matched) continue;
    for (const char* c : kContractions) {
      std::size_t n = std::strlen(c);
      if (s.compare(static_cast<std::size_t>(i), n, c) == 0) {
        emit(c);
        i += static_cast<int32_t>(n);
        matched = true;
        break;
      }
    }
    if (matched) continue;
    int32_t start = i, next = i;
    UChar32 c;
    U8_NEXT(p, next, len, c);
    if (c < 0) {  // invalid UTF-8: a byte of its own, as a punctuation run would take it
      emit(s.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(next - start)));
      i = next;
      continue;
    }
    if (is_letter(c)) {
      i = next;
      while (i < len) {
        int32_t j = i;
        U8_NEXT(p, j, len, c);
        if (c < 0 || !is_letter(c)) break;
        i = j;
      }
    } else if (is_number(c)) {
      i = next;
    } else if (!is_space(c)) {
      i = next;
      while (i < len) {
        int32_t j = i;
        U8_NEXT(p, j, len, c);
        if (c < 0 || is_space(c) || is_letter(c) || is_number(c)) break;
        i = j;
      }
    } else {
      i = next;
      continue;
    }
    emit(s.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(i - start)));
  }
  return ids;
}

std::vector<std::int64_t> Tokenizer::tokenize(const std::string& text, std::size_t context_length, bool truncate) const {
  // What truncation drops is never encoded: at most the first text_bytes of
  // the text (cut at a character boundary), and no token past the context.
  const std::size_t max_bytes = docarray::limits().text_bytes;
  std::string_view kept(text);
  if (kept.size() > max_bytes) {
    if (!truncate)
      throw Error("text of " + std::to_string(text.size()) + " bytes is longer than " + docarray::limit_hint("text_bytes"));
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    kept = kept.substr(0, cut);
  }
  std::vector<std::int64_t> ids{kStartOfText};
  // One token more than fits tells a too-long text from one that fits.
  for (auto id : encode(std::string(kept), truncate ? context_length : std::numeric_limits<std::size_t>::max()))
    ids.push_back(id);
  ids.push_back(kEndOfText);
  if (ids.size() > context_length) {
    if (!truncate)
      throw Error("text of " + std::to_string(ids.size()) + " tokens is longer than the context length " +
                  std::to_string(context_length) + ": \"" + text.substr(0, 60) + "...\"");  // Error keeps it valid UTF-8
    ids.resize(context_length);
    ids.back() = kEndOfText;
  }
  ids.resize(context_length, 0);
  return ids;
}

void Tokenizer::save(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  std::vector<std::pair<std::int64_t, std::string>> sorted;
  for (const auto& [k, v] : encoder_) sorted.emplace_back(v, k);
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [id, token] : sorted) vocab[token] = id;
  std::ofstream(std::filesystem::path(dir) / "vocab.json") << vocab.dump() << "\n";
  std::ofstream merges(std::filesystem::path(dir) / "merges.txt");
  merges << "#version: 0.2\n";
  for (const auto& [a, b] : merges_) merges << a << " " << b << "\n";
}

}  // namespace clip
