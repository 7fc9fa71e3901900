#pragma once
// A flow file's YAML as a plain tree, checked while it is built: nesting
// within limits().depth, at most limits().yaml_nodes nodes after aliases
// (a few hundred bytes of nested aliases expand to billions), no alias that
// refers to a node containing it, every map key a scalar and given once
// (PyYAML, hence Jina, silently keeps the last of two; we name both lines),
// and YAML merge keys (`<<: *base`) applied. Every node keeps its line and
// column, so the flow parser can point at anything it refuses.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace docflow::config {

struct YamlNode {
  enum class Kind { Null, Scalar, Sequence, Map };
  Kind kind = Kind::Null;
  std::string scalar;
  bool quoted = false;  // a quoted scalar (or !!str): a string whatever it reads like
  std::string tag;      // an explicit local tag such as "!Flow", else empty
  int line = 0, column = 0;
  std::vector<YamlNode> items;                        // a sequence's
  std::vector<std::pair<YamlNode, YamlNode>> pairs;   // a map's: scalar keys, each once

  bool is_null() const { return kind == Kind::Null; }
  bool is_scalar() const { return kind == Kind::Scalar; }
  bool is_sequence() const { return kind == Kind::Sequence; }
  bool is_map() const { return kind == Kind::Map; }
  // A map's value for `key`, or nullptr.
  const YamlNode* find(std::string_view key) const;
  // "a map", "a list", "a scalar", "nothing": for messages.
  const char* kind_name() const;
};

// Parse a file or text; throws ConfigError at the fault's line and column.
YamlNode load_yaml_file(const std::string& path);
YamlNode load_yaml_text(const std::string& text, const std::string& name);

}  // namespace docflow::config
