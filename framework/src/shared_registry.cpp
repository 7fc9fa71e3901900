#include "docflow/shared_registry.hpp"

#include <cstring>

namespace docflow {

void SharedRegistry::put(const std::string& name, std::shared_ptr<void> object, const char* type) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.type != type)
    throw Error("shared resource '" + name + "' is already published with another type");
  entries_[name] = Entry{std::move(object), type};
}

std::shared_ptr<void> SharedRegistry::take(const std::string& name, const char* type) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string list;
    for (const auto& [n, e] : entries_) list += (list.empty() ? "" : ", ") + n;
    throw Error("no shared resource named '" + name + "' (published: " + (list.empty() ? "none" : list) +
                "); an executor that publishes it must come earlier in the flow");
  }
  if (it->second.type != type)
    throw Error("shared resource '" + name + "' has another type than the one asked for");
  return it->second.object;
}

bool SharedRegistry::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.count(name) > 0;
}

std::vector<std::string> SharedRegistry::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [n, e] : entries_) out.push_back(n);
  return out;
}

}  // namespace docflow
