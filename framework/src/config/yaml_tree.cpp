#include "yaml_tree.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <map>

#include "docarray/limits.hpp"
#include "docflow/error.hpp"

namespace docflow::config {
namespace {

class Builder {
 public:
  explicit Builder(std::string file) : file_(std::move(file)) {}

  YamlNode build(const YAML::Node& n, std::uint32_t depth) {
    Location where = at(n);
    if (depth > docarray::limits().depth)
      throw ConfigError(where, "YAML nested deeper than " + docarray::limit_hint("depth"));
    if (++nodes_ > docarray::limits().yaml_nodes)
      throw ConfigError(where, "the flow expands to more than " + std::to_string(docarray::limits().yaml_nodes) +
                                   " YAML nodes (aliases of aliases?): " + docarray::limit_hint("yaml_nodes"));
    for (const YAML::Node& a : path_)
      if (a.is(n)) throw ConfigError(where, "a YAML alias refers to a node that contains it (a cycle)");
    YamlNode out;
    out.line = where.line;
    out.column = where.column;
    const std::string& tag = n.Tag();
    out.quoted = tag == "!" || tag == "tag:yaml.org,2002:str";
    if (!tag.empty() && tag != "?" && tag != "!" && tag.rfind("tag:yaml.org,2002:", 0) != 0) out.tag = tag;
    switch (n.Type()) {
      case YAML::NodeType::Scalar:
        out.kind = YamlNode::Kind::Scalar;
        out.scalar = n.Scalar();
        return out;
      case YAML::NodeType::Sequence:
        out.kind = YamlNode::Kind::Sequence;
        path_.push_back(n);
        for (const auto& item : n) out.items.push_back(build(item, depth + 1));
        path_.pop_back();
        return out;
      case YAML::NodeType::Map:
        out.kind = YamlNode::Kind::Map;
        path_.push_back(n);
        build_map(n, out, depth);
        path_.pop_back();
        return out;
      case YAML::NodeType::Null:
        return out;
      default:
        throw ConfigError(where, "undefined YAML value");
    }
  }

 private:
  Location at(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    return Location{file_, m.line + 1, m.column + 1};
  }

  void build_map(const YAML::Node& n, YamlNode& out, std::uint32_t depth) {
    std::map<std::string, int> lines;  // explicit keys and where they are
    std::vector<YamlNode> merged;      // the maps of `<<` keys, in order
    for (const auto& kv : n) {
      YamlNode key = build(kv.first, depth + 1);
      if (!key.is_scalar())
        throw ConfigError(Location{file_, key.line, key.column},
                          "a map key must be a scalar (a name), found " + std::string(key.kind_name()));
      YamlNode value = build(kv.second, depth + 1);
      if (key.scalar == "<<" && !key.quoted) {
        // YAML's merge key: a map, or a list of maps, whose entries this map
        // takes unless it sets them itself (the earlier map of a list wins).
        if (value.is_map()) merged.push_back(std::move(value));
        else if (value.is_sequence() &&
                 std::all_of(value.items.begin(), value.items.end(), [](const YamlNode& m) { return m.is_map(); }))
          for (auto& m : value.items) merged.push_back(std::move(m));
        else
          throw ConfigError(Location{file_, value.line, value.column},
                            "a merge key `<<` takes a map or a list of maps (`<<: *base`), found " +
                                std::string(value.kind_name()));
        continue;
      }
      auto [it, fresh] = lines.emplace(key.scalar, key.line);
      if (!fresh)
        throw ConfigError(Location{file_, key.line, key.column},
                          "key '" + key.scalar + "' is given twice in this map (lines " + std::to_string(it->second) +
                              " and " + std::to_string(key.line) + "); keep one");
      out.pairs.emplace_back(std::move(key), std::move(value));
    }
    for (auto& m : merged)
      for (auto& [k, v] : m.pairs)
        if (lines.emplace(k.scalar, k.line).second) out.pairs.emplace_back(std::move(k), std::move(v));
  }

  std::string file_;
  std::uint64_t nodes_ = 0;
  std::vector<YAML::Node> path_;  // the nodes being built, outermost first
};

YamlNode load(const std::string& name, const std::function<YAML::Node()>& parse) {
  YAML::Node root;
  try {
    root = parse();
  } catch (const YAML::ParserException& e) {
    throw ConfigError(Location{name, e.mark.line + 1, e.mark.column + 1}, "invalid YAML: " + e.msg);
  } catch (const YAML::BadFile&) {
    throw ConfigError(Location{name, 0, 0}, "cannot read the flow file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(Location{name, e.mark.line + 1, e.mark.column + 1}, "invalid YAML: " + e.msg);
  }
  return Builder(name).build(root, 0);
}

}  // namespace

const YamlNode* YamlNode::find(std::string_view key) const {
  for (const auto& [k, v] : pairs)
    if (k.scalar == key) return &v;
  return nullptr;
}

const char* YamlNode::kind_name() const {
  switch (kind) {
    case Kind::Map: return "a map";
    case Kind::Sequence: return "a list";
    case Kind::Scalar: return "a scalar";
    default: return "nothing";
  }
}

YamlNode load_yaml_file(const std::string& path) {
  return load(path, [&] { return YAML::LoadFile(path); });
}

YamlNode load_yaml_text(const std::string& text, const std::string& name) {
  return load(name, [&] { return YAML::Load(text); });
}

}  // namespace docflow::config
