#include "docflow/flow_config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "docflow/filter.hpp"
#include "docflow/params.hpp"
#include "docflow/plugin_registry.hpp"

namespace docflow {
namespace {

using docarray::Value;

struct Parser {
  std::string file;

  Location at(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    return Location{file, m.line + 1, m.column + 1};
  }
  Location at(const YAML::Mark& m) const { return Location{file, m.line + 1, m.column + 1}; }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& what) const { throw ConfigError(at(n), what); }

  static const char* kind(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map: return "a map";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Scalar: return "a scalar";
      case YAML::NodeType::Null: return "nothing";
      default: return "an undefined value";
    }
  }

  // `${{ ENV.NAME }}` substitution; an unset variable is an error here.
  std::string substitute(const std::string& s, const YAML::Node& n) const {
    static const std::regex pattern(R"(\$\{\{\s*ENV\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\})");
    std::string out;
    auto begin = std::sregex_iterator(s.begin(), s.end(), pattern);
    std::size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const char* value = std::getenv((*it)[1].str().c_str());
      if (!value) fail(n, "environment variable " + (*it)[1].str() + " is not set (used as " + it->str() + ")");
      out += s.substr(last, it->position() - last) + value;
      last = it->position() + it->length();
    }
    return out + s.substr(last);
  }

  // A plain scalar's type as YAML 1.2's core schema infers it; quoted
  // scalars are always strings.
  static Value infer(const std::string& s, bool quoted) {
    if (quoted) return Value(s);
    static const std::regex int_re(R"([-+]?[0-9]+)");
    static const std::regex float_re(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Value();
    if (s == "true" || s == "True" || s == "TRUE") return Value(true);
    if (s == "false" || s == "False" || s == "FALSE") return Value(false);
    if (std::regex_match(s, int_re)) {
      try {
        return Value(static_cast<long long>(std::stoll(s)));
      } catch (const std::out_of_range&) {
        return Value(s);
      }
    }
    if (std::regex_match(s, float_re)) return Value(std::stod(s));
    if (s == ".inf" || s == "+.inf") return Value(std::numeric_limits<double>::infinity());
    if (s == "-.inf") return Value(-std::numeric_limits<double>::infinity());
    return Value(s);
  }

  Value value(const YAML::Node& n) const {
    switch (n.Type()) {
      case YAML::NodeType::Null: return Value();
      case YAML::NodeType::Scalar: return infer(substitute(n.Scalar(), n), n.Tag() == "!");
      case YAML::NodeType::Sequence: {
        Value::List l;
        for (const auto& item : n) l.push_back(value(item));
        return Value(std::move(l));
      }
      case YAML::NodeType::Map: {
        Value::Map m;
        for (const auto& kv : n) m.emplace_back(kv.first.as<std::string>(), value(kv.second));
        return Value(std::move(m));
      }
      default: fail(n, "undefined value");
    }
  }

  std::string string(const YAML::Node& n, const std::string& key) const {
    Value v = value(n);
    if (!v.is_string()) fail(n, "'" + key + "' expects a string, found " + v.dump());
    return v.as_string();
  }

  int integer(const YAML::Node& n, const std::string& key, int minimum) const {
    Value v = value(n);
    if (!v.is_int()) fail(n, "'" + key + "' expects an integer, found " + v.dump());
    if (v.as_int() < minimum) fail(n, "'" + key + "' must be at least " + std::to_string(minimum) + ", found " + v.dump());
    return static_cast<int>(v.as_int());
  }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& known, const std::string& what) const {
    for (const auto& kv : map) {
      std::string key = kv.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string hint = closest_match(key, known);
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw ConfigError(at(kv.first), "unknown key '" + key + "' in " + what +
                                          (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                          "; known keys: " + list);
    }
  }

  ExecutorConfig executor(const YAML::Node& n, std::size_t index) const {
    if (!n.IsMap()) fail(n, "an executor must be a map with at least `uses`, found " + std::string(kind(n)));
    check_keys(n, {"name", "uses", "with", "uses_with", "needs", "replicas", "when", "env"}, "an executor");
    ExecutorConfig e;
    e.where = at(n);
    if (!n["uses"]) fail(n, "executor #" + std::to_string(index + 1) + " has no `uses` (the executor to run)");
    e.uses = string(n["uses"], "uses");
    e.uses_where = at(n["uses"]);
    e.name = n["name"] ? string(n["name"], "name") : "executor" + std::to_string(index);
    if (e.name.empty() || e.name == "gateway") fail(n["name"] ? n["name"] : n, "executor name '" + e.name + "' is reserved or empty");
    if (n["with"] && n["uses_with"]) fail(n["uses_with"], "give either `with` or `uses_with`, not both");
    const YAML::Node with = n["with"] ? n["with"] : n["uses_with"];
    if (with) {
      e.with_where = at(with);
      if (!with.IsMap() && !with.IsNull()) fail(with, "`with` expects a map of parameters, found " + std::string(kind(with)));
      e.with = value(with);
      if (with.IsMap())
        for (const auto& kv : with) e.with_locations[kv.first.as<std::string>()] = at(kv.first);
    }
    if (n["needs"]) {
      e.needs_where = at(n["needs"]);
      const YAML::Node needs = n["needs"];
      if (needs.IsScalar()) e.needs.push_back(string(needs, "needs"));
      else if (needs.IsSequence())
        for (const auto& item : needs) e.needs.push_back(string(item, "needs"));
      else fail(needs, "`needs` expects a name or a list of names, found " + std::string(kind(needs)));
      if (e.needs.empty()) fail(needs, "`needs` is an empty list");
    }
    if (n["replicas"]) {
      try {
        e.replicas = integer(n["replicas"], "replicas", 1);
      } catch (const ConfigError& err) {
        throw ConfigError(err.where(), "executor '" + e.name + "': " + std::string(err.what()).substr(err.where().str().size() + 2));
      }
    }
    if (n["when"]) {
      e.when_where = at(n["when"]);
      e.when = value(n["when"]);
      Filter::parse(e.when, e.when_where);  // reject a bad filter now
    }
    if (n["env"]) {
      if (!n["env"].IsMap()) fail(n["env"], "`env` expects a map of NAME: value");
      for (const auto& kv : n["env"]) e.env[kv.first.as<std::string>()] = value(kv.second).is_string() ? value(kv.second).as_string() : value(kv.second).dump();
    }
    return e;
  }

  FlowConfig flow(const YAML::Node& root) const {
    FlowConfig f;
    f.file = file;
    f.where = at(root);
    if (!root.IsMap()) fail(root, "a flow file must be a map with `jtype: Flow` and `executors`, found " + std::string(kind(root)));
    check_keys(root, {"jtype", "version", "with", "executors"}, "the flow");
    if (!root["jtype"]) fail(root, "missing `jtype: Flow`");
    if (string(root["jtype"], "jtype") != "Flow") fail(root["jtype"], "`jtype` must be Flow, found " + root["jtype"].Scalar());
    if (const YAML::Node with = root["with"]) {
      if (!with.IsMap()) fail(with, "the flow's `with` expects a map");
      check_keys(with, {"name", "workspace", "prefetch", "plugins", "threads", "checkpoints"}, "the flow's `with`");
      if (with["name"]) f.name = string(with["name"], "name");
      if (with["workspace"]) f.workspace = string(with["workspace"], "workspace");
      if (with["prefetch"]) f.prefetch = integer(with["prefetch"], "prefetch", 1);
      if (with["threads"]) f.threads = integer(with["threads"], "threads", 0);
      if (with["checkpoints"]) f.checkpoints = integer(with["checkpoints"], "checkpoints", 0);
      if (const YAML::Node p = with["plugins"]) {
        f.plugins_where = at(p);
        if (p.IsScalar()) f.plugins.push_back(string(p, "plugins"));
        else if (p.IsSequence())
          for (const auto& item : p) f.plugins.push_back(string(item, "plugins"));
        else fail(p, "`plugins` expects a path or a list of paths");
      }
    }
    const YAML::Node execs = root["executors"];
    if (!execs) fail(root, "missing `executors`: a flow needs at least one");
    if (!execs.IsSequence() || execs.size() == 0) fail(execs, "`executors` expects a non-empty list");
    for (std::size_t i = 0; i < execs.size(); ++i) {
      ExecutorConfig e = executor(execs[i], i);
      if (f.find(e.name)) fail(execs[i], "executor name '" + e.name + "' is used twice");
      if (e.needs.empty()) e.needs.push_back(i == 0 ? "gateway" : f.executors.back().name);
      f.executors.push_back(std::move(e));
    }
    return f;
  }
};

void apply_override(FlowConfig& f, const Override& o) {
  const Location where{"--set " + o.assignment, 0, 0};
  auto eq = o.assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(where, "expected KEY=VALUE, for example executors.reader.with.batch_size=64");
  std::string path = o.assignment.substr(0, eq);
  Value value = Parser::infer(o.assignment.substr(eq + 1), false);
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    auto dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (parts.size() == 2 && parts[0] == "with") {
    const std::string& key = parts[1];
    auto need_int = [&] {
      if (!value.is_int() || value.as_int() < 1) throw ConfigError(where, "'" + key + "' expects a positive integer");
      return static_cast<int>(value.as_int());
    };
    if (key == "name") f.name = value.is_string() ? value.as_string() : value.dump();
    else if (key == "workspace") f.workspace = value.is_string() ? value.as_string() : value.dump();
    else if (key == "prefetch") f.prefetch = need_int();
    else if (key == "threads") f.threads = need_int();
    else if (key == "checkpoints") {
      if (!value.is_int() || value.as_int() < 0) throw ConfigError(where, "'checkpoints' expects an integer >= 0");
      f.checkpoints = static_cast<int>(value.as_int());
    } else throw ConfigError(where, "unknown flow setting '" + key + "' (known: name, workspace, prefetch, threads, checkpoints)");
    return;
  }
  std::string executor, key;
  if (parts.size() == 4 && parts[0] == "executors" && parts[2] == "with") {
    executor = parts[1];
    key = parts[3];
  } else if (parts.size() == 2) {
    executor = parts[0];
    key = parts[1];
  } else {
    throw ConfigError(where, "expected executors.NAME.with.KEY=VALUE, NAME.KEY=VALUE or with.KEY=VALUE");
  }
  for (auto& e : f.executors) {
    if (e.name != executor) continue;
    e.with[key] = value;
    e.with_locations[key] = where;
    return;
  }
  std::vector<std::string> names;
  for (const auto& e : f.executors) names.push_back(e.name);
  std::string hint = closest_match(executor, names);
  throw ConfigError(where, "no executor named '" + executor + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
}

FlowConfig parse(const YAML::Node& root, const std::string& file, const std::vector<Override>& overrides) {
  Parser p{file};
  FlowConfig f = p.flow(root);
  for (const auto& o : overrides) apply_override(f, o);
  return f;
}

void emit(YAML::Emitter& out, const Value& v) {
  switch (v.type()) {
    case Value::Type::Null: out << YAML::Null; break;
    case Value::Type::Bool: out << v.as_bool(); break;
    case Value::Type::Int: out << v.as_int(); break;
    case Value::Type::Double: out << v.as_double(); break;
    case Value::Type::String: out << YAML::DoubleQuoted << v.as_string(); break;
    case Value::Type::List:
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& i : v.as_list()) emit(out, i);
      out << YAML::EndSeq;
      break;
    case Value::Type::Map:
      out << YAML::BeginMap;
      for (const auto& [k, i] : v.as_map()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, i);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

const ExecutorConfig* FlowConfig::find(const std::string& executor) const {
  for (const auto& e : executors)
    if (e.name == executor) return &e;
  return nullptr;
}

FlowConfig parse_flow_file(const std::string& path, const std::vector<Override>& overrides) {
  if (!std::filesystem::exists(path)) throw ConfigError(Location{path, 0, 0}, "flow file not found");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(Location{path, e.mark.line + 1, e.mark.column + 1}, "invalid YAML: " + e.msg);
  } catch (const YAML::BadFile&) {
    throw ConfigError(Location{path, 0, 0}, "cannot read the flow file");
  }
  FlowConfig f = parse(root, path, overrides);
  f.dir = std::filesystem::path(path).parent_path().string();
  if (f.name.empty()) f.name = std::filesystem::path(path).stem().string();
  return f;
}

FlowConfig parse_flow_text(const std::string& yaml, const std::string& name, const std::vector<Override>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(Location{name, e.mark.line + 1, e.mark.column + 1}, "invalid YAML: " + e.msg);
  }
  FlowConfig f = parse(root, name, overrides);
  if (f.name.empty()) f.name = "flow";
  return f;
}

void validate_flow(const FlowConfig& f, const PluginRegistry& plugins) {
  int sources = 0;
  for (const auto& e : f.executors) {
    const ExecutorInfo* info = nullptr;
    try {
      info = &plugins.find(e.uses);
    } catch (const PluginError& err) {
      throw ConfigError(e.uses_where, "executor '" + e.name + "': " + err.what());
    }
    try {
      check_params(info->schema, e.with, e.name);
    } catch (const Error& err) {
      // Point at the parameter's own line when we know it.
      Location where = e.with_where.line ? e.with_where : e.where;
      std::string msg = err.what();
      for (const auto& [key, loc] : e.with_locations)
        if (msg.find("'" + key + "'") != std::string::npos) where = loc;
      throw ConfigError(where, msg);
    }
    if (info->is_source) {
      ++sources;
      if (sources > 1) throw ConfigError(e.where, "executor '" + e.name + "': a flow can have only one source (reader)");
      if (e.needs.size() != 1 || e.needs.front() != "gateway")
        throw ConfigError(e.needs_where.line ? e.needs_where : e.where,
                          "executor '" + e.name + "' is a source: it must be first (needs: gateway)");
    }
  }
}

std::string to_yaml(const FlowConfig& f) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "jtype" << YAML::Value << "Flow";
  out << YAML::Key << "with" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << f.name;
  out << YAML::Key << "workspace" << YAML::Value << f.workspace;
  out << YAML::Key << "prefetch" << YAML::Value << f.prefetch;
  if (f.threads) out << YAML::Key << "threads" << YAML::Value << f.threads;
  if (f.checkpoints) out << YAML::Key << "checkpoints" << YAML::Value << f.checkpoints;
  if (!f.plugins.empty()) out << YAML::Key << "plugins" << YAML::Value << f.plugins;
  out << YAML::EndMap;
  out << YAML::Key << "executors" << YAML::Value << YAML::BeginSeq;
  for (const auto& e : f.executors) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << e.name;
    out << YAML::Key << "uses" << YAML::Value << e.uses;
    if (!e.with.is_null()) {
      out << YAML::Key << "with" << YAML::Value;
      emit(out, e.with);
    }
    out << YAML::Key << "needs" << YAML::Value << YAML::Flow << e.needs;
    if (e.replicas != 1) out << YAML::Key << "replicas" << YAML::Value << e.replicas;
    if (!e.when.is_null()) {
      out << YAML::Key << "when" << YAML::Value;
      emit(out, e.when);
    }
    if (!e.env.empty()) out << YAML::Key << "env" << YAML::Value << e.env;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace docflow
