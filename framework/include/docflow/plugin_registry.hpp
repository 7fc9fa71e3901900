#pragma once
// Finds, loads and checks plugins, and creates executors from them.
//
// Search path, in order: the flow's `plugins:` entries, DOCFLOW_PLUGIN_PATH
// (':'-separated), the install folder, the build tree. A folder contributes
// every `docflow_plugin_*.so` in it; a file is loaded as it is. Libraries are
// opened RTLD_NOW | RTLD_LOCAL and stay loaded until the registry and every
// executor they made are gone (each executor's deleter holds its library).
#include <memory>
#include <string>
#include <vector>

#include "docflow/executor.hpp"
#include "docflow/params.hpp"
#include "docflow/plugin_abi.hpp"

namespace boost::dll {
class shared_library;
}

namespace docflow {

struct PluginInfo {
  std::string path, name, version, description;
  std::shared_ptr<boost::dll::shared_library> library;
};

// A plugin that was found but refused (ABI or build mismatch, no entry point).
struct RefusedPlugin {
  std::string path, reason;
};

struct ExecutorInfo {
  std::string name, description, details;
  bool is_source = false;
  bool single_instance = false;  // refuses replicas (DOCFLOW_EXECUTOR_SINGLE_INSTANCE)
  std::string output_param;      // the parameter naming the file it writes, or empty
  ParamSchema schema;
  const PluginInfo* plugin = nullptr;
  void* (*create)(const void*) = nullptr;
};

class PluginRegistry {
 public:
  PluginRegistry();
  ~PluginRegistry();
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  // The search path for a flow whose `plugins:` entries are `flow_entries`
  // (relative ones resolved against `flow_dir`).
  static std::vector<std::string> search_path(const std::vector<std::string>& flow_entries,
                                              const std::string& flow_dir);

  // Loads every plugin on `paths`. Plugins refused in a scanned folder are
  // recorded (see refused()); a refused file named explicitly is an error.
  void load(const std::vector<std::string>& paths, const std::vector<std::string>& explicit_files = {});
  // Loads one file; throws PluginError naming both sides on a mismatch.
  void load_file(const std::string& path);

  // "Name" or "plugin/Name". Throws PluginError: unknown (with the closest
  // names and the plugins searched) or ambiguous (naming the plugins).
  const ExecutorInfo& find(const std::string& uses) const;
  std::shared_ptr<Executor> create(const std::string& uses, const ExecutorContext& context) const;

  const std::vector<std::unique_ptr<PluginInfo>>& plugins() const { return plugins_; }
  const std::vector<ExecutorInfo>& executors() const { return executors_; }
  const std::vector<RefusedPlugin>& refused() const { return refused_; }
  const std::vector<std::string>& searched() const { return searched_; }

 private:
  std::vector<std::unique_ptr<PluginInfo>> plugins_;
  std::vector<ExecutorInfo> executors_;
  std::vector<RefusedPlugin> refused_;
  std::vector<std::string> searched_;
};

// Converts one executor table entry's parameter schema (checked JSON defaults).
ParamSchema schema_from_descriptor(const docflow_executor_entry& entry);

}  // namespace docflow
