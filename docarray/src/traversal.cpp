// Traversal paths in DocArray's grammar:
//   path    := '@'? segment (',' segment)*
//   segment := step+            step := ('r' | 'c' | 'm') slice?
//   slice   := '[' int? ':' int? ']' | '[' int ']'   (Python semantics)
// 'r' may only start a segment; 'c' and 'm' descend into chunks and matches of
// every document selected so far, the slice applying per parent.
#include <cctype>
#include <optional>

#include "docarray/document.hpp"
#include "docarray/document_array.hpp"
#include "docarray/error.hpp"

namespace docarray {
namespace {

struct Slice {
  std::optional<long> start, stop;
  bool single = false;
};

struct Step {
  char kind;  // r, c or m
  std::optional<Slice> slice;
};

using Segment = std::vector<Step>;

[[noreturn]] void bad_path(const std::string& path, std::size_t pos, const std::string& what) {
  throw Error("invalid traversal path '" + path + "' at position " + std::to_string(pos) + ": " + what +
              " (expected for example @r, @c, @cm, @r,c, @c[:1], @m[-3:])");
}

std::optional<long> parse_int(const std::string& path, std::size_t& pos) {
  std::size_t begin = pos;
  if (pos < path.size() && path[pos] == '-') ++pos;
  std::size_t digits = pos;
  while (pos < path.size() && std::isdigit(static_cast<unsigned char>(path[pos]))) ++pos;
  if (pos == digits) {
    if (pos != begin) bad_path(path, begin, "'-' without digits");
    return std::nullopt;
  }
  if (pos - digits > 18) bad_path(path, begin, "index out of range");  // std::stol would throw out_of_range
  return std::stol(path.substr(begin, pos - begin));
}

std::vector<Segment> parse(const std::string& path) {
  std::size_t pos = 0;
  if (pos < path.size() && path[pos] == '@') ++pos;
  if (pos == path.size()) bad_path(path, pos, "empty path");
  std::vector<Segment> segments(1);
  while (pos < path.size()) {
    char ch = path[pos];
    if (ch == ',') {
      if (segments.back().empty()) bad_path(path, pos, "empty segment before ','");
      segments.emplace_back();
      ++pos;
      continue;
    }
    if (ch != 'r' && ch != 'c' && ch != 'm') bad_path(path, pos, std::string("unexpected '") + ch + "'");
    if (ch == 'r' && !segments.back().empty()) bad_path(path, pos, "'r' can only start a segment");
    Step step{ch, std::nullopt};
    ++pos;
    if (pos < path.size() && path[pos] == '[') {
      ++pos;
      Slice s;
      s.start = parse_int(path, pos);
      if (pos < path.size() && path[pos] == ':') {
        ++pos;
        s.stop = parse_int(path, pos);
      } else {
        if (!s.start) bad_path(path, pos, "empty index");
        s.single = true;
      }
      if (pos >= path.size() || path[pos] != ']') bad_path(path, pos, "expected ']'");
      ++pos;
      step.slice = s;
    }
    segments.back().push_back(step);
  }
  if (segments.back().empty()) bad_path(path, pos, "empty segment at the end");
  return segments;
}

// Python's slice bounds for a sequence of n elements.
std::pair<std::size_t, std::size_t> bounds(const std::optional<Slice>& s, std::size_t n) {
  if (!s) return {0, n};
  auto clamp = [n](long v) {
    long len = static_cast<long>(n);
    if (v < 0) v += len;
    return static_cast<std::size_t>(std::max(0L, std::min(v, len)));
  };
  if (s->single) {
    long i = *s->start < 0 ? *s->start + static_cast<long>(n) : *s->start;
    if (i < 0 || i >= static_cast<long>(n)) return {0, 0};
    return {static_cast<std::size_t>(i), static_cast<std::size_t>(i) + 1};
  }
  std::size_t a = s->start ? clamp(*s->start) : 0;
  std::size_t b = s->stop ? clamp(*s->stop) : n;
  return {a, std::max(a, b)};
}

template <typename DocPtr, typename Array>
void select(Array& array, const std::optional<Slice>& slice, std::vector<DocPtr>& out) {
  auto [a, b] = bounds(slice, array.size());
  for (std::size_t i = a; i < b; ++i) out.push_back(&array.raw()[i]);
}

template <typename DocPtr, typename Array>
std::vector<DocPtr> traverse(Array& root, const std::string& path) {
  std::vector<DocPtr> result;
  for (const Segment& segment : parse(path)) {
    std::vector<DocPtr> current;
    std::size_t first = 0;
    if (segment.front().kind == 'r') {
      select(root, segment.front().slice, current);
      first = 1;
    } else {
      select(root, std::nullopt, current);
    }
    for (std::size_t i = first; i < segment.size(); ++i) {
      std::vector<DocPtr> next;
      for (DocPtr d : current) select(segment[i].kind == 'c' ? d->chunks : d->matches, segment[i].slice, next);
      current = std::move(next);
    }
    result.insert(result.end(), current.begin(), current.end());
  }
  return result;
}

}  // namespace

std::vector<Document*> DocumentArray::traverse_flat(const std::string& path) {
  mark_stale();
  return traverse<Document*>(*this, path);
}

std::vector<const Document*> DocumentArray::traverse_flat(const std::string& path) const {
  return traverse<const Document*>(*this, path);
}

}  // namespace docarray
