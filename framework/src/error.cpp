#include "docflow/error.hpp"

#include <algorithm>
#include <cctype>

#include "docarray/utf8.hpp"

namespace docflow {

Error::Error(const std::string& what) : std::runtime_error(docarray::escape_invalid_utf8(what)) {}

std::string Location::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

ConfigError::ConfigError(const Location& where, const std::string& what)
    : Error(where.str() + ": " + what), where_(where) {}

std::string ConfigError::message() const {
  std::string all = what(), prefix = where_.str() + ": ";
  return all.rfind(prefix, 0) == 0 ? all.substr(prefix.size()) : all;
}

ExecutorError::ExecutorError(const std::string& executor, const std::string& endpoint, const std::string& what)
    : Error("executor '" + executor + "'" + (endpoint.empty() ? "" : " on " + endpoint) + ": " + what),
      executor_(executor),
      endpoint_(endpoint),
      message_(docarray::escape_invalid_utf8(what)) {}

namespace {
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // Close enough to be a typo: at most a third of the word's letters off.
  if (best.empty() || best_d > std::max<std::size_t>(2, word.size() / 3)) return {};
  return best;
}

}  // namespace docflow
