#include "docflow/plugin_registry.hpp"

#include <dlfcn.h>

#include <boost/dll/shared_library.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "docarray/jsonl_io.hpp"
#include "docflow/error.hpp"

namespace fs = std::filesystem;

namespace docflow {
namespace {

docarray::Value json_to_value(const nlohmann::ordered_json& j) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return {};
    case T::boolean: return j.get<bool>();
    case T::number_integer: return j.get<std::int64_t>();
    case T::number_unsigned: return static_cast<std::int64_t>(j.get<std::uint64_t>());
    case T::number_float: return j.get<double>();
    case T::string: return j.get<std::string>();
    case T::array: {
      docarray::Value::List l;
      for (const auto& i : j) l.push_back(json_to_value(i));
      return docarray::Value(std::move(l));
    }
    case T::object: {
      docarray::Value::Map m;
      for (const auto& [k, v] : j.items()) m.emplace_back(k, json_to_value(v));
      return docarray::Value(std::move(m));
    }
    default: return {};
  }
}

ParamType parse_type(const std::string& t) {
  for (ParamType p : {ParamType::Bool, ParamType::Int, ParamType::Double, ParamType::String, ParamType::List,
                      ParamType::Map, ParamType::Any}) {
    if (t == param_type_name(p)) return p;
  }
  throw Error("unknown parameter type '" + t + "'");
}

bool is_plugin_file(const fs::path& p) {
  std::string name = p.filename().string();
  return name.rfind("docflow_plugin_", 0) == 0 && p.extension() == ".so";
}

// LIBDIR/docflow/plugins, found from where libdocflow itself was loaded, so
// that an installed tree works under any prefix.
std::string install_plugin_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&install_plugin_dir), &info) && info.dli_fname)
    return (fs::path(info.dli_fname).parent_path() / "docflow" / "plugins").string();
  return DOCFLOW_INSTALL_PLUGIN_DIR;
}

void* create_base_executor(const void* context) {
  return new Executor(*static_cast<const ExecutorContext*>(context));
}

// Jina's BaseExecutor, what an executor without `uses` runs: it binds no
// endpoint, so every request passes through untouched. Built into docflow
// itself, not into a plugin.
const ExecutorInfo& base_executor() {
  static const PluginInfo framework{"", "docflow", "", "built into docflow", nullptr};
  static const ExecutorInfo info = [] {
    ExecutorInfo x;
    x.name = "BaseExecutor";
    x.description = "passes every request through (an executor without `uses`)";
    x.plugin = &framework;
    x.create = &create_base_executor;
    return x;
  }();
  return info;
}

}  // namespace

ParamSchema schema_from_descriptor(const docflow_executor_entry& e) {
  ParamSchema schema;
  for (std::size_t i = 0; i < e.n_params; ++i) {
    const docflow_param_schema& p = e.params[i];
    ParamSpec spec;
    spec.name = p.name ? p.name : "";
    try {
      spec.type = parse_type(p.type ? p.type : "any");
      if (p.default_json) spec.default_value = json_to_value(nlohmann::ordered_json::parse(p.default_json));
    } catch (const std::exception& ex) {
      throw PluginError(std::string("executor '") + e.name + "' parameter '" + spec.name +
                        "': bad schema in the plugin: " + ex.what());
    }
    spec.description = p.description ? p.description : "";
    if (p.has_minimum) spec.minimum = p.minimum;
    if (p.has_maximum) spec.maximum = p.maximum;
    if (p.choices) {
      std::stringstream s(p.choices);
      std::string c;
      while (std::getline(s, c, '|')) spec.choices.push_back(c);
    }
    schema.push_back(std::move(spec));
  }
  return schema;
}

PluginRegistry::PluginRegistry() = default;
PluginRegistry::~PluginRegistry() = default;

std::vector<std::string> PluginRegistry::search_path(const std::vector<std::string>& flow_entries,
                                                     const std::string& flow_dir) {
  std::vector<std::string> out;
  for (const auto& e : flow_entries) {
    fs::path p(e);
    out.push_back((p.is_relative() && !flow_dir.empty() ? fs::path(flow_dir) / p : p).lexically_normal().string());
  }
  if (const char* env = std::getenv("DOCFLOW_PLUGIN_PATH")) {
    std::stringstream s(env);
    std::string item;
    while (std::getline(s, item, ':'))
      if (!item.empty()) out.push_back(item);
  }
  out.push_back(install_plugin_dir());
  out.push_back(DOCFLOW_BUILD_PLUGIN_DIR);
  return out;
}

void PluginRegistry::load(const std::vector<std::string>& paths, const std::vector<std::string>& explicit_files) {
  std::set<std::string> explicit_set;
  for (const auto& f : explicit_files) explicit_set.insert(fs::path(f).lexically_normal().string());
  for (const auto& entry : paths) {
    searched_.push_back(entry);
    std::error_code ec;
    if (fs::is_regular_file(entry, ec)) {
      if (explicit_set.count(entry)) load_file(entry);
      else {
        try {
          load_file(entry);
        } catch (const PluginError& e) {
          refused_.push_back({entry, e.what()});
        }
      }
      continue;
    }
    if (!fs::is_directory(entry, ec)) {
      if (explicit_set.count(entry)) throw PluginError("plugin path '" + entry + "' does not exist");
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(entry, ec))
      if (is_plugin_file(f.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      try {
        load_file(f.string());
      } catch (const PluginError& e) {
        refused_.push_back({f.string(), e.what()});
      }
    }
  }
}

void PluginRegistry::load_file(const std::string& path) {
  std::error_code ec;
  std::string canonical = fs::weakly_canonical(path, ec).string();
  for (const auto& p : plugins_)
    if (fs::weakly_canonical(p->path, ec).string() == canonical) return;  // already loaded

  auto lib = std::make_shared<boost::dll::shared_library>();
  try {
    lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginError("cannot load plugin " + path + ": " + e.what());
  }
  if (!lib->has(DOCFLOW_PLUGIN_ENTRY_NAME))
    throw PluginError("plugin " + path + " does not export " DOCFLOW_PLUGIN_ENTRY_NAME
                      "(); build it with docflow_add_plugin() and DOCFLOW_PLUGIN(...)");
  auto entry = lib->get<const docflow_plugin_descriptor*()>(DOCFLOW_PLUGIN_ENTRY_NAME);
  const docflow_plugin_descriptor* d = entry();
  if (!d) throw PluginError("plugin " + path + " returned no descriptor");

  // The gate: nothing but this C struct has crossed so far.
  const std::string host = "this docflow has ABI " + std::to_string(DOCFLOW_ABI_MAJOR) + "." +
                           std::to_string(DOCFLOW_ABI_MINOR) + ", build id '" + DOCFLOW_BUILD_ID + "'";
  const std::string theirs = "plugin " + path + " was built for ABI " + std::to_string(d->abi_major) + "." +
                             std::to_string(d->abi_minor) + ", build id '" + (d->build_id ? d->build_id : "?") + "'";
  if (d->abi_major != DOCFLOW_ABI_MAJOR)
    throw PluginError(theirs + " but " + host + ": the major versions differ; rebuild the plugin");
  if (d->abi_minor > DOCFLOW_ABI_MINOR)
    throw PluginError(theirs + " but " + host + ": the plugin is newer than the host; upgrade docflow");
  if (!d->build_id || std::string(d->build_id) != DOCFLOW_BUILD_ID)
    throw PluginError(theirs + " but " + host + ": compiler, C++ ABI or LibTorch differ; rebuild the plugin");

  auto info = std::make_unique<PluginInfo>();
  info->path = path;
  info->name = d->name ? d->name : fs::path(path).stem().string();
  info->version = d->version ? d->version : "";
  info->description = d->description ? d->description : "";
  info->library = lib;
  for (const auto& p : plugins_)
    if (p->name == info->name) return;  // an earlier entry on the search path wins
  std::vector<ExecutorInfo> added;
  for (std::size_t i = 0; i < d->n_executors; ++i) {
    const docflow_executor_entry& e = d->executors[i];
    ExecutorInfo x;
    x.name = e.name;
    x.description = e.description ? e.description : "";
    x.details = e.details ? e.details : "";
    x.is_source = e.is_source != 0;
    x.single_instance = x.is_source || (e.flags & DOCFLOW_EXECUTOR_SINGLE_INSTANCE);
    x.output_param = e.output_param ? e.output_param : "";
    x.schema = schema_from_descriptor(e);
    x.plugin = info.get();
    x.create = e.create;
    added.push_back(std::move(x));
  }
  plugins_.push_back(std::move(info));
  for (auto& x : added) executors_.push_back(std::move(x));
}

const ExecutorInfo& PluginRegistry::find(const std::string& uses) const {
  std::string plugin, name = uses;
  if (auto slash = uses.find('/'); slash != std::string::npos) {
    plugin = uses.substr(0, slash);
    name = uses.substr(slash + 1);
  }
  std::vector<const ExecutorInfo*> hits;
  for (const auto& x : executors_)
    if (x.name == name && (plugin.empty() || x.plugin->name == plugin)) hits.push_back(&x);
  if (hits.size() == 1) return *hits.front();
  if (hits.empty() && name == "BaseExecutor" && (plugin.empty() || plugin == "docflow")) return base_executor();
  if (hits.size() > 1) {
    std::string list;
    for (const auto* h : hits) list += (list.empty() ? "" : ", ") + h->plugin->name + "/" + name;
    throw PluginError("executor '" + uses + "' is provided by several plugins; write one of: " + list);
  }
  std::vector<std::string> names;
  for (const auto& x : executors_) names.push_back(x.name);
  std::string hint = closest_match(name, names);
  std::string msg = "unknown executor '" + uses + "'";
  if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
  std::string loaded;
  for (const auto& p : plugins_) loaded += (loaded.empty() ? "" : ", ") + p->name;
  msg += "; plugins loaded: " + (loaded.empty() ? std::string("none") : loaded);
  std::string where;
  for (const auto& s : searched_) where += (where.empty() ? "" : ", ") + s;
  msg += "; searched: " + where;
  for (const auto& r : refused_) msg += "; refused " + r.reason;
  throw PluginError(msg);
}

std::shared_ptr<Executor> PluginRegistry::create(const std::string& uses, const ExecutorContext& context) const {
  const ExecutorInfo& info = find(uses);
  void* raw = info.create(&context);
  if (!raw) throw ExecutorError(context.name, "", "the plugin's factory returned nothing");
  // The deleter keeps the library loaded for as long as the object lives.
  auto lib = info.plugin->library;
  return std::shared_ptr<Executor>(static_cast<Executor*>(raw), [lib](Executor* e) { delete e; });
}

}  // namespace docflow
