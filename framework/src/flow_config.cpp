#include "docflow/flow_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>

#include "config/yaml_tree.hpp"

#include "docflow/filter.hpp"
#include "docflow/params.hpp"
#include "docflow/plugin_registry.hpp"

namespace docflow {
namespace {

using config::YamlNode;
using docarray::Value;

// Independent errors of one file are reported together, as compilers do,
// up to this many.
constexpr std::size_t kMaxErrors = 20;

// Collects ConfigErrors so that one run shows every independent error.
class ErrorList {
 public:
  // Runs `f`; a ConfigError it throws is recorded instead of stopping.
  template <typename F>
  void attempt(F&& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      add(e);
    }
  }
  void add(const ConfigError& e) {
    if (errors_.size() < kMaxErrors) errors_.push_back(e);
    else truncated_ = true;
  }
  bool empty() const { return errors_.empty(); }
  // Throws the first error with the others on the lines after it.
  void throw_if_any() const {
    if (errors_.empty()) return;
    if (errors_.size() == 1) throw errors_.front();
    std::string text = errors_.front().message();
    for (std::size_t i = 1; i < errors_.size(); ++i) text += "\n" + std::string(errors_[i].what());
    text += "\n(" + std::to_string(errors_.size()) + (truncated_ ? "+" : "") + " errors)";
    throw ConfigError(errors_.front().where(), text);
  }

 private:
  std::vector<ConfigError> errors_;
  bool truncated_ = false;
};

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema's float: [-+]? ( . digits | digits [. digits*] ) ([eE] [-+]? digits)?
bool looks_like_float(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  std::size_t int_start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  bool int_digits = i > int_start, frac_digits = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t frac_start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    frac_digits = i > frac_start;
  }
  if (!int_digits && !frac_digits) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!all_digits(s.substr(i))) return false;
    return true;
  }
  return i == s.size();
}

// A plain scalar's type as YAML 1.2's core schema infers it; quoted scalars
// are always strings. Numbers out of range are errors, never wrapped or
// turned into strings. Hand-written: std::regex recurses per character and
// overflows the stack on a long scalar.
Value infer(const std::string& s, bool quoted) {
  if (quoted) return Value(s);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Value();
  if (s == "true" || s == "True" || s == "TRUE") return Value(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value(false);
  std::string_view body(s);
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.remove_prefix(1);
  if (all_digits(body)) {
    long long v = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(begin, s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range || end != s.data() + s.size())
      throw Error("integer " + s + " is out of range (-2^63 .. 2^63-1)");
    return Value(static_cast<std::int64_t>(v));
  }
  if (looks_like_float(s)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isinf(d)) throw Error("number " + s + " is out of range for a double (write .inf for infinity)");
    return Value(d);
  }
  if (s == ".inf" || s == "+.inf" || s == ".Inf" || s == "+.Inf") return Value(std::numeric_limits<double>::infinity());
  if (s == "-.inf" || s == "-.Inf") return Value(-std::numeric_limits<double>::infinity());
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return Value(std::numeric_limits<double>::quiet_NaN());
  return Value(s);
}

struct Parser {
  std::string file;
  const YamlNode* root = nullptr;
  std::map<std::string, std::string> context;  // CONTEXT.NAME values (from --set CONTEXT.NAME=V)
  ErrorList* errors = nullptr;

  Location at(const YamlNode& n) const { return Location{file, n.line, n.column}; }
  [[noreturn]] void fail(const YamlNode& n, const std::string& what) const { throw ConfigError(at(n), what); }

  // `root.a.b[0]` in the file itself, as Jina resolves ${{ root.PATH }}.
  const YamlNode* lookup(const std::string& path) const {
    const YamlNode* n = root;
    std::size_t i = 0;
    while (n && i < path.size()) {
      if (path[i] == '.') { ++i; continue; }
      if (path[i] == '[') {
        std::size_t close = path.find(']', i);
        std::string index = path.substr(i + 1, close == std::string::npos ? std::string::npos : close - i - 1);
        if (close == std::string::npos || !all_digits(index) || index.size() > 9 || !n->is_sequence()) return nullptr;
        std::size_t k = std::stoul(index);
        n = k < n->items.size() ? &n->items[k] : nullptr;
        i = close + 1;
        continue;
      }
      std::size_t j = i;
      while (j < path.size() && path[j] != '.' && path[j] != '[') ++j;
      n = n->is_map() ? n->find(path.substr(i, j - i)) : nullptr;
      i = j;
    }
    return n;
  }

  // Jina's substitutions: ${{ ENV.NAME }}, ${{ CONTEXT.NAME }}, ${{ NAME }}
  // (a context variable), ${{ root.PATH }}, and shell-style $NAME or ${NAME}
  // for environment variables (not in `when`, where `$` starts an operator).
  // Whatever resolves to nothing is an error at the value's line, never left
  // in the text (a run once wrote a file named `${{ CONTEXT.OUT }}.jsonl`).
  std::string substitute(const std::string& s, const YamlNode& n, bool shell) const {
    if (s.find('$') == std::string::npos) return s;
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
      if (s[i] != '$') { out += s[i++]; continue; }
      if (s.compare(i, 3, "${{") == 0) {
        std::size_t close = s.find("}}", i + 3);
        if (close == std::string::npos) fail(n, "unterminated ${{ ... }} in '" + s + "'");
        std::string expr = s.substr(i + 3, close - i - 3);
        expr.erase(0, expr.find_first_not_of(" \t"));
        expr.erase(expr.find_last_not_of(" \t") + 1);
        out += resolve(expr, n);
        i = close + 2;
        continue;
      }
      if (shell && i + 1 < s.size() && (s[i + 1] == '{' || std::isalpha(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '_')) {
        bool braced = s[i + 1] == '{';
        std::size_t j = i + 1 + braced;
        while (j < s.size() && is_name_char(s[j])) ++j;
        std::string var = s.substr(i + 1 + braced, j - i - 1 - braced);
        if (braced && (j >= s.size() || s[j] != '}' || var.empty())) fail(n, "unterminated ${NAME} in '" + s + "'");
        const char* value = std::getenv(var.c_str());
        if (!value)
          fail(n, "environment variable " + var + " is not set (used as " + s.substr(i, j + braced - i) +
                      "; write $$ for a literal $)");
        out += value;
        i = j + braced;
        continue;
      }
      if (shell && s.compare(i, 2, "$$") == 0) { out += '$'; i += 2; continue; }
      out += s[i++];
    }
    return out;
  }

  std::string resolve(const std::string& expr, const YamlNode& n) const {
    const std::string used = "${{ " + expr + " }}";
    auto name_after = [&](std::size_t prefix) {
      std::string name = expr.substr(prefix);
      if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char)) fail(n, "bad variable name in " + used);
      return name;
    };
    if (expr.rfind("ENV.", 0) == 0) {
      std::string name = name_after(4);
      const char* value = std::getenv(name.c_str());
      if (!value) fail(n, "environment variable " + name + " is not set (used as " + used + ")");
      return value;
    }
    if (expr.rfind("CONTEXT.", 0) == 0 || (!expr.empty() && std::all_of(expr.begin(), expr.end(), is_name_char))) {
      std::string name = expr.rfind("CONTEXT.", 0) == 0 ? name_after(8) : expr;
      auto it = context.find(name);
      if (it == context.end())
        fail(n, "context variable " + name + " is not set (used as " + used + "; give it with --set CONTEXT." + name +
                    "=VALUE)");
      return it->second;
    }
    if (expr.rfind("root.", 0) == 0 || expr.rfind("root[", 0) == 0) {
      const YamlNode* target = lookup(expr.substr(4));
      if (!target) fail(n, used + " names nothing in this file");
      if (!target->is_scalar()) fail(n, used + " names " + target->kind_name() + "; it must name a single value");
      if (target->scalar.find("${{") != std::string::npos) fail(n, used + " names a value that itself uses ${{ }}");
      return target->scalar;
    }
    fail(n, "cannot resolve " + used + ": docflow resolves ${{ ENV.NAME }}, ${{ CONTEXT.NAME }}, ${{ NAME }} (a context "
            "variable) and ${{ root.PATH }}");
  }

  Value value(const YamlNode& n, bool shell = true) const {
    switch (n.kind) {
      case YamlNode::Kind::Null: return Value();
      case YamlNode::Kind::Scalar:
        try {
          return infer(substitute(n.scalar, n, shell), n.quoted);
        } catch (const ConfigError&) {
          throw;
        } catch (const Error& e) {
          fail(n, e.what());
        }
      case YamlNode::Kind::Sequence: {
        Value::List l;
        for (const auto& item : n.items) l.push_back(value(item, shell));
        return Value(std::move(l));
      }
      case YamlNode::Kind::Map: {
        Value::Map m;
        for (const auto& [k, v] : n.pairs) m.emplace_back(k.scalar, value(v, shell));
        return Value(std::move(m));
      }
    }
    fail(n, "undefined value");
  }

  std::string string(const YamlNode& n, const std::string& key) const {
    Value v = value(n);
    if (!v.is_string()) fail(n, "'" + key + "' expects a string, found " + v.dump());
    return v.as_string();
  }

  int integer(const YamlNode& n, const std::string& key, int minimum, int maximum = 1 << 30) const {
    Value v = value(n);
    if (!v.is_int()) fail(n, "'" + key + "' expects an integer, found " + v.dump());
    if (v.as_int() < minimum) fail(n, "'" + key + "' must be at least " + std::to_string(minimum) + ", found " + v.dump());
    if (v.as_int() > maximum) fail(n, "'" + key + "' must be at most " + std::to_string(maximum) + ", found " + v.dump());
    return static_cast<int>(v.as_int());
  }

  bool boolean(const YamlNode& n, const std::string& key) const {
    Value v = value(n);
    if (!v.is_bool()) fail(n, "'" + key + "' expects true or false, found " + v.dump());
    return v.as_bool();
  }

  // Jina's serving keys. Each is honoured by `flow serve`; none is accepted
  // and then ignored.
  void serve_settings(const YamlNode& with, ServeConfig& s) const {
    auto setting = [&](const char* key, auto&& parse) {
      if (const YamlNode* v = with.find(key)) errors->attempt([&] { parse(*v); });
    };
    setting("protocol", [&](const YamlNode& v) {
      std::vector<const YamlNode*> items;
      if (v.is_sequence())
        for (const auto& i : v.items) items.push_back(&i);
      else items.push_back(&v);
      if (items.empty()) fail(v, "'protocol' expects http");
      for (const YamlNode* i : items) {
        std::string p = string(*i, "protocol");
        std::string lower;
        for (char c : p) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower != "http")
          fail(*i, "docflow serves Jina's HTTP API only (protocol: http); found protocol: " + p +
                       (lower == "grpc" || lower == "websocket" ? " (a Jina client can use http instead)" : ""));
      }
    });
    setting("host", [&](const YamlNode& v) {
      s.host = string(v, "host");
      if (s.host.empty()) fail(v, "'host' must not be empty (127.0.0.1 for this machine only, 0.0.0.0 for every interface)");
    });
    if (with.find("port") && with.find("port_expose"))
      errors->add(ConfigError(at(*with.find("port_expose")), "'port_expose' is the older name of 'port': give one of them"));
    setting("port", [&](const YamlNode& v) { s.port = integer(v, "port", 0, 65535); });
    setting("port_expose", [&](const YamlNode& v) { s.port = integer(v, "port_expose", 0, 65535); });
    setting("cors", [&](const YamlNode& v) { s.cors = boolean(v, "cors"); });
    setting("timeout_send", [&](const YamlNode& v) {
      Value x = value(v);
      s.timeout_send_ms = x.is_null() ? -1 : integer(v, "timeout_send", -1);
      if (s.timeout_send_ms == 0) fail(v, "'timeout_send' is in milliseconds and must be positive (or -1: no limit)");
    });
    setting("timeout_ready", [&](const YamlNode& v) { s.timeout_ready_ms = integer(v, "timeout_ready", -1); });
    setting("monitoring", [&](const YamlNode& v) { s.monitoring = boolean(v, "monitoring"); });
    setting("port_monitoring", [&](const YamlNode& v) { s.port_monitoring = integer(v, "port_monitoring", 0, 65535); });
  }

  // Every unknown key is its own error.
  void check_keys(const YamlNode& map, const std::vector<std::string>& known, const std::string& what) const {
    for (const auto& [k, v] : map.pairs) {
      if (std::find(known.begin(), known.end(), k.scalar) != known.end()) continue;
      std::string hint = closest_match(k.scalar, known);
      std::string list;
      for (const auto& key : known) list += (list.empty() ? "" : ", ") + key;
      errors->add(ConfigError(at(k), "unknown key '" + k.scalar + "' in " + what +
                                         (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                         "; known keys: " + list));
    }
  }

  // `uses: NAME`, or Jina's inline `uses: {jtype: NAME, with: {...}}` whose
  // `with` the executor's own `with` overrides key by key.
  void uses(const YamlNode& n, ExecutorConfig& e) const {
    e.uses_where = at(n);
    if (!n.is_map()) {
      e.uses = string(n, "uses");
      return;
    }
    check_keys(n, {"jtype", "with"}, "an inline `uses`");
    const YamlNode* jtype = n.find("jtype");
    if (!jtype) fail(n, "an inline `uses` needs `jtype: EXECUTOR`");
    e.uses = string(*jtype, "jtype");
    e.uses_where = at(*jtype);
    if (const YamlNode* with = n.find("with")) merge_with(*with, e);
  }

  // A `with` map's parameters into e.with, each over any of the same name
  // already there (an inline `uses`'s), with their locations.
  void merge_with(const YamlNode& with, ExecutorConfig& e) const {
    e.with_where = at(with);
    if (!with.is_map() && !with.is_null())
      fail(with, "`with` expects a map of parameters, found " + std::string(with.kind_name()));
    Value own = value(with);
    if (own.is_map()) {
      if (!e.with.is_map()) e.with = Value(Value::Map{});
      for (const auto& [k, v] : own.as_map()) e.with[k] = v;
    }
    for (const auto& [k, v] : with.pairs) e.with_locations[k.scalar] = at(k);
  }

  // `resources: {requests: {cpu: 2, memory: 4Gi}, limits: {...}}`, as in a
  // Kubernetes container: what `flow export` gives the executor's pods. A
  // local run does not enforce them.
  void resources(const YamlNode& v, ExecutorConfig& e) const {
    const std::string who = "executor '" + e.name + "': ";
    if (!v.is_map()) fail(v, who + "`resources` expects a map with `requests` and/or `limits`");
    for (const auto& [kind, amounts] : v.pairs) {
      if (kind.scalar != "requests" && kind.scalar != "limits")
        fail(kind, who + "`resources` takes `requests` and `limits`, found '" + kind.scalar + "'");
      if (!amounts.is_map()) fail(amounts, who + "`resources." + kind.scalar + "` expects a map like {cpu: 2, memory: 4Gi}");
      for (const auto& [resource, amount] : amounts.pairs) {
        if (!amount.is_scalar() || amount.scalar.empty())
          fail(amount, who + "`resources." + kind.scalar + "." + resource.scalar + "` expects a quantity like 2, 500m or 4Gi");
        if (!is_quantity(amount.scalar))
          fail(amount, who + "`resources." + kind.scalar + "." + resource.scalar + ": " + amount.scalar +
                           "` is not a Kubernetes quantity (a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, Ti)");
        e.resources[kind.scalar][resource.scalar] = amount.scalar;
      }
    }
  }

  static bool is_quantity(const std::string& q) {
    std::size_t i = 0, digits = 0;
    while (i < q.size() && (std::isdigit(static_cast<unsigned char>(q[i])) || q[i] == '.')) digits += q[i++] != '.';
    static const std::set<std::string> suffixes = {"", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    return digits > 0 && std::count(q.begin(), q.begin() + static_cast<long>(i), '.') <= 1 && suffixes.count(q.substr(i));
  }

  // `host` + `port` (a name or a list each; one port for every host, or
  // one per host) or `hosts: [h:p, ...]`: the executor runs there, one
  // replica per address. With shards, the addresses are the shards in
  // order, and `hosts: [[a:p, b:p], [c:p]]` gives each shard its replicas.
  // Errors name the executor.
  void remote_addresses(const YamlNode& n, ExecutorConfig& e) const {
    const YamlNode* host = n.find("host");
    const YamlNode* port = n.find("port");
    const YamlNode* hosts = n.find("hosts");
    const YamlNode* external = n.find("external");
    const std::string who = "executor '" + e.name + "': ";
    errors->attempt([&] {
      if (external && !boolean(*external, "external")) {
        // Jina deployed such an executor on that host itself; docflow runs
        // it here, so an address would be silently ignored.
        if (host || port || hosts)
          fail(*external, who + "`external: false` with an address: docflow runs a non-external executor in this process; "
                               "drop `host`/`port`/`hosts`, or set `external: true` for one served there with `flow executor`");
        return;
      }
      if (hosts && (host || port)) fail(*hosts, who + "give `hosts` or `host` + `port`, not both");
      if (external && !host && !hosts) fail(*external, who + "an external executor needs `host` and `port` (or `hosts`)");
      if (port && !host) fail(*port, who + "`port` without `host`");
      auto list = [&](const YamlNode& v, const char* key) {
        std::vector<const YamlNode*> out;
        if (v.is_sequence()) {
          for (const auto& item : v.items) out.push_back(&item);
          if (out.empty()) fail(v, who + "`" + key + "` is an empty list");
        } else {
          out.push_back(&v);
        }
        return out;
      };
      if (hosts) {
        e.remote_where = at(*hosts);
        auto address = [&](const YamlNode& h) {
          const std::string a = string(h, "hosts");
          const auto colon = a.rfind(':');
          if (colon == std::string::npos || colon == 0 || colon + 1 == a.size() ||
              a.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
              a.size() - colon - 1 > 5 || std::stol(a.substr(colon + 1)) > 65535)  // stol of 40 digits throws
            fail(h, who + "`hosts` expects HOST:PORT entries (or, for shards, lists of them), found '" + a + "'");
          e.remote.push_back(a);
          return a;
        };
        for (const YamlNode* h : list(*hosts, "hosts")) {
          std::vector<std::string> group;
          if (h->is_sequence()) {
            if (h->items.empty()) fail(*h, who + "a shard's list of `hosts` is empty");
            for (const auto& item : h->items) group.push_back(address(item));
          } else {
            group.push_back(address(*h));
          }
          e.shard_hosts.push_back(std::move(group));
        }
      } else if (host) {
        e.remote_where = at(*host);
        if (!port) fail(*host, who + "`host` needs a `port`");
        const auto hs = list(*host, "host");
        const auto ps = list(*port, "port");
        if (hs.size() > 1 && ps.size() > 1 && hs.size() != ps.size())
          fail(*port, who + std::to_string(hs.size()) + " hosts but " + std::to_string(ps.size()) + " ports (give one port, or one per host)");
        const std::size_t count = std::max(hs.size(), ps.size());
        for (std::size_t i = 0; i < count; ++i) {
          const std::string h = string(*hs[hs.size() > 1 ? i : 0], "host");
          const int p = integer(*ps[ps.size() > 1 ? i : 0], "port", 1, 65535);
          e.remote.push_back(h + ":" + std::to_string(p));
          e.shard_hosts.push_back({e.remote.back()});
        }
      }
    });
  }

  ExecutorConfig executor(const YamlNode& n, std::size_t index) const {
    if (!n.is_map()) fail(n, "an executor must be a map with at least `uses`, found " + std::string(n.kind_name()));
    ExecutorConfig e;
    e.where = at(n);
    e.name = "executor" + std::to_string(index);
    errors->attempt([&] {
      if (const YamlNode* name = n.find("name")) {
        e.name = string(*name, "name");
        if (e.name.empty() || e.name == "gateway") fail(*name, "executor name '" + e.name + "' is reserved or empty");
      }
    });
    // Errors inside an executor name it.
    auto field = [&](const char* key, auto&& parse) {
      const YamlNode* v = n.find(key);
      if (!v) return;
      try {
        parse(*v);
      } catch (const ConfigError& err) {
        const std::string prefix = "executor '" + e.name + "': ";
        std::string msg = err.message();
        errors->add(ConfigError(err.where(), msg.rfind(prefix, 0) == 0 ? msg : prefix + msg));
      }
    };
    check_keys(n, {"name", "uses", "with", "uses_with", "needs", "replicas", "when", "env", "host", "port", "hosts", "external",
                   "timeout_ready", "timeout_send", "shards", "polling", "resources", "isolate", "restarts", "token_file"},
               "executor '" + e.name + "'");
    // Jina runs BaseExecutor, a pass-through, where `uses` is left out.
    e.uses = "BaseExecutor";
    e.uses_where = e.where;
    field("uses", [&](const YamlNode& v) { uses(v, e); });
    if (n.find("with") && n.find("uses_with"))
      errors->add(ConfigError(at(*n.find("uses_with")), "executor '" + e.name + "': give either `with` or `uses_with`, not both"));
    for (const char* key : {"with", "uses_with"})
      field(key, [&](const YamlNode& with) { merge_with(with, e); });
    field("needs", [&](const YamlNode& needs) {
      e.needs_where = at(needs);
      if (needs.is_scalar()) e.needs.push_back(string(needs, "needs"));
      else if (needs.is_sequence())
        for (const auto& item : needs.items) e.needs.push_back(string(item, "needs"));
      else fail(needs, "`needs` expects a name or a list of names, found " + std::string(needs.kind_name()));
      if (e.needs.empty()) fail(needs, "`needs` is an empty list");
    });
    field("replicas", [&](const YamlNode& v) {
      e.replicas_where = at(v);
      e.replicas = integer(v, "replicas", 1, 1024);
    });
    field("when", [&](const YamlNode& v) {
      e.when_where = at(v);
      e.when = value(v, /*shell=*/false);
      Filter::parse(e.when, e.when_where);  // reject a bad filter now
    });
    field("shards", [&](const YamlNode& v) {
      e.shards_where = at(v);
      e.shards = integer(v, "shards", 1, 1024);
    });
    field("polling", [&](const YamlNode& v) {
      auto mode = [&](const YamlNode& m) {
        std::string x = string(m, "polling");
        for (auto& c : x) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (x != "ANY" && x != "ALL") fail(m, "`polling` expects ANY or ALL, found '" + m.scalar + "'");
        return x;
      };
      if (v.is_map()) {
        for (const auto& [k, m] : v.pairs) e.polling[k.scalar] = mode(m);
      } else {
        e.polling = {{"*", mode(v)}};
      }
    });
    field("resources", [&](const YamlNode& v) { resources(v, e); });
    field("isolate", [&](const YamlNode& v) {
      e.isolate_where = at(v);
      e.isolate = boolean(v, "isolate");
    });
    field("restarts", [&](const YamlNode& v) { e.restarts = integer(v, "restarts", 0, 1000); });
    field("token_file", [&](const YamlNode& v) { e.token_file = string(v, "token_file"); });
    remote_addresses(n, e);
    field("timeout_ready", [&](const YamlNode& v) { e.timeout_ready_ms = integer(v, "timeout_ready", -1); });
    field("timeout_send", [&](const YamlNode& v) { e.timeout_send_ms = integer(v, "timeout_send", -1); });
    field("env", [&](const YamlNode& env) {
      if (!env.is_map()) fail(env, "`env` expects a map of NAME: value");
      for (const auto& [k, v] : env.pairs) {
        Value val = value(v);
        e.env[k.scalar] = val.is_string() ? val.as_string() : val.dump();
      }
    });
    if (!e.token_file.empty() && e.remote.empty())
      errors->add(ConfigError(at(*n.find("token_file")), "executor '" + e.name + "': `token_file` is for a remote executor "
                                                                                "(one with `host` + `port` or `hosts`)"));
    if (e.isolate && !e.remote.empty())
      errors->add(ConfigError(e.isolate_where, "executor '" + e.name + "' is remote: it already runs in a process of its own; "
                                                                      "drop `isolate`"));
    const bool nested = std::any_of(e.shard_hosts.begin(), e.shard_hosts.end(), [](const auto& g) { return g.size() > 1; });
    if (!e.remote.empty() && (n.find("with") || n.find("uses_with")))
      errors->add(ConfigError(e.with_where, "executor '" + e.name + "' runs remotely: its parameters belong where it runs "
                                                                   "(flow executor --uses NAME --set KEY=VALUE)"));
    if (e.shards > 1 && !e.remote.empty()) {
      // Each shard's addresses are its replicas; replica r of the executor
      // uses address r % N of every shard.
      std::size_t most = 0;
      for (const auto& g : e.shard_hosts) most = std::max(most, g.size());
      if (static_cast<int>(e.shard_hosts.size()) != e.shards)
        errors->add(ConfigError(e.remote_where, "executor '" + e.name + "': shards: " + std::to_string(e.shards) + " but " +
                                                    std::to_string(e.shard_hosts.size()) +
                                                    (nested ? " lists of addresses" : " addresses") + "; give one per shard, in shard order" +
                                                    (nested ? "" : " (a list of addresses for a shard's replicas)")));
      else if (n.find("replicas") && e.replicas < static_cast<int>(most))
        errors->add(ConfigError(e.replicas_where, "executor '" + e.name + "': replicas: " + std::to_string(e.replicas) +
                                                      " but a shard has " + std::to_string(most) +
                                                      " addresses; a remote executor needs a replica (a connection) per address"));
      if (!n.find("replicas")) e.replicas = static_cast<int>(most);
    } else if (!e.remote.empty()) {
      if (nested)
        errors->add(ConfigError(e.remote_where, "executor '" + e.name + "': `hosts` as lists of addresses gives each shard its replicas, "
                                                                       "but the executor has no `shards`; set shards: " +
                                                    std::to_string(e.shard_hosts.size()) + ", or give a flat list of replicas"));
      // One replica per address, or more: each replica is one connection
      // (one request in flight), replica r on address r % N.
      if (n.find("replicas") && e.replicas < static_cast<int>(e.remote.size()))
        errors->add(ConfigError(e.replicas_where, "executor '" + e.name + "': replicas: " + std::to_string(e.replicas) + " but " +
                                                      std::to_string(e.remote.size()) +
                                                      " addresses; a remote executor needs a replica (a connection) per address"));
      if (!n.find("replicas")) e.replicas = static_cast<int>(e.remote.size());
      e.shard_hosts.clear();
    }
    return e;
  }

  FlowConfig flow(const YamlNode& root) const {
    FlowConfig f;
    f.file = file;
    f.where = at(root);
    if (!root.is_map()) fail(root, "a flow file must be a map with `jtype: Flow` and `executors`, found " + std::string(root.kind_name()));
    check_keys(root, {"jtype", "version", "with", "executors"}, "the flow");
    // `!Flow` on the document is Jina's other way of saying `jtype: Flow`.
    if (!root.tag.empty() && root.tag != "!Flow") fail(root, "the flow's tag must be !Flow, found " + root.tag);
    if (const YamlNode* jtype = root.find("jtype")) {
      errors->attempt([&] {
        std::string t = string(*jtype, "jtype");
        if (t != "Flow") fail(*jtype, "`jtype` must be Flow, found " + t);
      });
    } else if (root.tag.empty()) {
      errors->add(ConfigError(at(root), "missing `jtype: Flow` (or the `!Flow` tag)"));
    }
    if (const YamlNode* with = root.find("with")) {
      if (!with->is_map()) fail(*with, "the flow's `with` expects a map");
      check_keys(*with, {"name", "workspace", "prefetch", "plugins", "threads", "checkpoints", "protocol", "host", "port",
                         "port_expose", "cors", "timeout_send", "timeout_ready", "monitoring", "port_monitoring"},
                 "the flow's `with`");
      auto setting = [&](const char* key, auto&& parse) {
        if (const YamlNode* v = with->find(key)) errors->attempt([&] { parse(*v); });
      };
      setting("name", [&](const YamlNode& v) { f.name = string(v, "name"); });
      setting("workspace", [&](const YamlNode& v) { f.workspace = string(v, "workspace"); });
      setting("prefetch", [&](const YamlNode& v) { f.prefetch = integer(v, "prefetch", 1); });
      setting("threads", [&](const YamlNode& v) { f.threads = integer(v, "threads", 0, 4096); });
      setting("checkpoints", [&](const YamlNode& v) { f.checkpoints = integer(v, "checkpoints", 0); });
      serve_settings(*with, f.serve);
      setting("plugins", [&](const YamlNode& p) {
        f.plugins_where = at(p);
        if (p.is_scalar()) f.plugins.push_back(string(p, "plugins"));
        else if (p.is_sequence())
          for (const auto& item : p.items) f.plugins.push_back(string(item, "plugins"));
        else fail(p, "`plugins` expects a path or a list of paths");
      });
    }
    const YamlNode* execs = root.find("executors");
    if (!execs) fail(root, "missing `executors`: a flow needs at least one");
    if (!execs->is_sequence() || execs->items.empty()) fail(*execs, "`executors` expects a non-empty list");
    for (std::size_t i = 0; i < execs->items.size(); ++i) {
      errors->attempt([&] {
        ExecutorConfig e = executor(execs->items[i], i);
        if (f.find(e.name)) fail(execs->items[i], "executor name '" + e.name + "' is used twice");
        // The one before, by default; when it did not parse (its error is
        // recorded and the file is refused anyway) there is none to name.
        if (e.needs.empty()) e.needs.push_back(i == 0 || f.executors.empty() ? "gateway" : f.executors.back().name);
        f.executors.push_back(std::move(e));
      });
    }
    return f;
  }
};

bool is_context_override(const Override& o) {
  return o.assignment.rfind("CONTEXT.", 0) == 0 || o.assignment.rfind("context.", 0) == 0;
}

void apply_override(FlowConfig& f, const Override& o) {
  const Location where{"--set " + o.assignment, 0, 0};
  auto eq = o.assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(where, "expected KEY=VALUE, for example executors.reader.with.batch_size=64");
  std::string path = o.assignment.substr(0, eq);
  Value value;
  try {
    value = infer(o.assignment.substr(eq + 1), false);
  } catch (const Error& e) {
    throw ConfigError(where, e.what());
  }
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
    } else if (key == "host") {
      if (!value.is_string() || value.as_string().empty()) throw ConfigError(where, "'host' expects a host name or address");
      f.serve.host = value.as_string();
    } else if (key == "port" || key == "port_expose" || key == "port_monitoring") {
      if (!value.is_int() || value.as_int() < 0 || value.as_int() > 65535)
        throw ConfigError(where, "'" + key + "' expects a port number from 0 to 65535");
      (key == "port_monitoring" ? f.serve.port_monitoring : f.serve.port) = static_cast<int>(value.as_int());
    } else if (key == "cors" || key == "monitoring") {
      if (!value.is_bool()) throw ConfigError(where, "'" + key + "' expects true or false");
      (key == "cors" ? f.serve.cors : f.serve.monitoring) = value.as_bool();
    } else if (key == "timeout_send" || key == "timeout_ready") {
      if (!value.is_int() || value.as_int() < -1 || value.as_int() == 0 || value.as_int() > (1 << 30))
        throw ConfigError(where, "'" + key + "' expects milliseconds (a positive integer) or -1 for no limit");
      (key == "timeout_send" ? f.serve.timeout_send_ms : f.serve.timeout_ready_ms) = static_cast<int>(value.as_int());
    } else if (key == "protocol") {
      if (!value.is_string() || (value.as_string() != "http" && value.as_string() != "HTTP"))
        throw ConfigError(where, "docflow serves Jina's HTTP API only (protocol: http); found " + value.dump());
    } else throw ConfigError(where, "unknown flow setting '" + key + "' (known: name, workspace, prefetch, threads, checkpoints, "
                                     "host, port, port_expose, cors, timeout_send, timeout_ready, monitoring, port_monitoring)");
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

FlowConfig parse(const YamlNode& root, const std::string& file, const std::vector<Override>& overrides) {
  ErrorList errors;
  Parser p;
  p.file = file;
  p.root = &root;
  p.errors = &errors;
  std::vector<Override> settings;
  for (const auto& o : overrides) {
    if (!is_context_override(o)) {
      settings.push_back(o);
      continue;
    }
    auto eq = o.assignment.find('=');
    if (eq == std::string::npos || eq <= 8)
      throw ConfigError(Location{"--set " + o.assignment, 0, 0}, "expected CONTEXT.NAME=VALUE");
    p.context[o.assignment.substr(8, eq - 8)] = o.assignment.substr(eq + 1);
  }
  FlowConfig f;
  errors.attempt([&] { f = p.flow(root); });
  errors.throw_if_any();
  for (const auto& o : settings) apply_override(f, o);
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
  FlowConfig f = parse(config::load_yaml_file(path), path, overrides);
  f.dir = std::filesystem::path(path).parent_path().string();
  if (f.name.empty()) f.name = std::filesystem::path(path).stem().string();
  return f;
}

FlowConfig parse_flow_text(const std::string& yaml, const std::string& name, const std::vector<Override>& overrides) {
  FlowConfig f = parse(config::load_yaml_text(yaml, name), name, overrides);
  if (f.name.empty()) f.name = "flow";
  return f;
}

// Each executor's problems are independent of the others': all are reported.
void validate_flow(const FlowConfig& f, const PluginRegistry& plugins) {
  ErrorList errors;
  int sources = 0;
  std::map<std::string, const ExecutorConfig*> writers;  // output file -> the executor writing it
  for (const auto& e : f.executors) {
    if (!e.remote.empty()) continue;  // checked where it runs
    const ExecutorInfo* info = nullptr;
    try {
      info = &plugins.find(e.uses);
    } catch (const PluginError& err) {
      errors.add(ConfigError(e.uses_where, "executor '" + e.name + "': " + err.what()));
      continue;
    }
    try {
      check_params(info->schema, e.with, e.name);
    } catch (const Error& err) {
      // Point at the parameter's own line when we know it.
      Location where = e.with_where.line ? e.with_where : e.where;
      std::string msg = err.what();
      for (const auto& [key, loc] : e.with_locations)
        if (msg.find("'" + key + "'") != std::string::npos) where = loc;
      errors.add(ConfigError(where, msg));
    }
    if (info->single_instance && e.shards > 1 && !info->output_param.empty() && e.with.is_map())
      if (const Value* out = e.with.find(info->output_param); out && out->is_string() && !out->as_string().empty())
        errors.add(ConfigError(e.shards_where.line ? e.shards_where : e.where,
                               "executor '" + e.name + "' has shards: " + std::to_string(e.shards) + ", which would all use `" +
                                   info->output_param + ": " + out->as_string() + "`; leave `" + info->output_param +
                                   "` unset (each shard keeps its own in its workspace, NAME-0, NAME-1, ...)"));
    if (info->single_instance && e.replicas > 1)
      errors.add(ConfigError(e.replicas_where.line ? e.replicas_where : e.where,
                             "executor '" + e.name + "' (" + info->name + ") keeps state across requests" +
                                 (info->output_param.empty() ? "" : " (the file it writes)") +
                                 ", so it cannot have replicas (found replicas: " + std::to_string(e.replicas) +
                                 "): each replica would hold part of it; remove `replicas`"));
    if (!info->output_param.empty() && e.with.is_map()) {
      if (const Value* out = e.with.find(info->output_param); out && out->is_string() && !out->as_string().empty()) {
        std::string file = std::filesystem::absolute(out->as_string()).lexically_normal().string();
        auto [it, fresh] = writers.emplace(file, &e);
        if (!fresh) {
          auto loc = e.with_locations.find(info->output_param);
          errors.add(ConfigError(loc != e.with_locations.end() ? loc->second : e.where,
                                 "executors '" + it->second->name + "' and '" + e.name + "' both write " +
                                     out->as_string() + ": the second would overwrite the first; give each its own file"));
        }
      }
    }
    if (info->is_source && e.isolate)
      errors.add(ConfigError(e.isolate_where, "executor '" + e.name + "' is a source: it runs in the flow's own process; drop `isolate`"));
    if (info->is_source) {
      ++sources;
      if (sources > 1)
        errors.add(ConfigError(e.where, "executor '" + e.name + "': a flow can have only one source (reader)"));
      else if (e.needs.size() != 1 || e.needs.front() != "gateway")
        errors.add(ConfigError(e.needs_where.line ? e.needs_where : e.where,
                               "executor '" + e.name + "' is a source: it must be first (needs: gateway)"));
    }
  }
  errors.throw_if_any();
}

ExecutorConfig standalone(const ExecutorConfig& executor) {
  ExecutorConfig e;
  e.name = executor.name;
  e.uses = executor.uses;
  e.with = executor.with;
  e.env = executor.env;
  e.needs = {"gateway"};
  return e;
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
  const ServeConfig defaults;
  if (f.serve.host != defaults.host) out << YAML::Key << "host" << YAML::Value << f.serve.host;
  if (f.serve.port != defaults.port) out << YAML::Key << "port" << YAML::Value << f.serve.port;
  if (f.serve.cors) out << YAML::Key << "cors" << YAML::Value << true;
  if (f.serve.timeout_send_ms != defaults.timeout_send_ms) out << YAML::Key << "timeout_send" << YAML::Value << f.serve.timeout_send_ms;
  if (f.serve.timeout_ready_ms != defaults.timeout_ready_ms)
    out << YAML::Key << "timeout_ready" << YAML::Value << f.serve.timeout_ready_ms;
  if (f.serve.monitoring) out << YAML::Key << "monitoring" << YAML::Value << true;
  if (f.serve.port_monitoring) out << YAML::Key << "port_monitoring" << YAML::Value << f.serve.port_monitoring;
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
    if (e.shards > 1) out << YAML::Key << "shards" << YAML::Value << e.shards;
    if (e.polling != std::map<std::string, std::string>{{"*", "ANY"}}) out << YAML::Key << "polling" << YAML::Value << YAML::Flow << e.polling;
    // The replicas a remote executor gets by default: one per address (of its largest shard).
    int default_replicas = 1;
    if (e.shards > 1 && !e.remote.empty()) {
      for (const auto& g : e.shard_hosts) default_replicas = std::max(default_replicas, static_cast<int>(g.size()));
      if (default_replicas > 1 || e.replicas > 1) out << YAML::Key << "hosts" << YAML::Value << YAML::Flow << e.shard_hosts;
      else out << YAML::Key << "hosts" << YAML::Value << YAML::Flow << e.remote;
    } else if (!e.remote.empty()) {
      default_replicas = static_cast<int>(e.remote.size());
      out << YAML::Key << "hosts" << YAML::Value << YAML::Flow << e.remote;
    }
    if (e.replicas != default_replicas) out << YAML::Key << "replicas" << YAML::Value << e.replicas;
    if (e.timeout_ready_ms != 600000) out << YAML::Key << "timeout_ready" << YAML::Value << e.timeout_ready_ms;
    if (e.timeout_send_ms != 600000) out << YAML::Key << "timeout_send" << YAML::Value << e.timeout_send_ms;
    if (!e.when.is_null()) {
      out << YAML::Key << "when" << YAML::Value;
      emit(out, e.when);
    }
    if (!e.env.empty()) out << YAML::Key << "env" << YAML::Value << e.env;
    if (!e.token_file.empty()) out << YAML::Key << "token_file" << YAML::Value << e.token_file;
    if (e.isolate) out << YAML::Key << "isolate" << YAML::Value << true;
    if (e.restarts != 3) out << YAML::Key << "restarts" << YAML::Value << e.restarts;
    if (!e.resources.empty()) out << YAML::Key << "resources" << YAML::Value << YAML::Flow << e.resources;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace docflow
