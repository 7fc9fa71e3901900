// The plugins a build put in a plugin folder, named as the registry names
// them ("docflow_plugin_io.so" -> "io"), sorted: a build of only some
// targets (the sanitizer stage leaves out finetune) has only those, and
// tests that list or count plugins read them here instead of assuming the
// full build's set.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace docflow::testing {

inline std::vector<std::string> in_tree_plugins(const std::string& dir) {
  std::vector<std::string> names;
  const std::string prefix = "docflow_plugin_", suffix = ".so";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string f = entry.path().filename().string();
    if (f.size() > prefix.size() + suffix.size() && f.rfind(prefix, 0) == 0 &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace docflow::testing
