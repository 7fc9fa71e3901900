#pragma once
// The flow's registry of named shared objects (for example one CLIP model
// used by two encoders and a trainer). Types are compared by their mangled
// names, which stay equal across shared libraries loaded RTLD_LOCAL, where
// type_info addresses may not.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>
#include <vector>

#include "docflow/error.hpp"

namespace docflow {

class SharedRegistry {
 public:
  template <typename T>
  void publish(const std::string& name, std::shared_ptr<T> object) {
    put(name, std::static_pointer_cast<void>(std::move(object)), typeid(T).name());
  }

  // The object published under `name`; throws docflow::Error when it is
  // missing (listing the names there are) or of another type.
  template <typename T>
  std::shared_ptr<T> get(const std::string& name) const {
    return std::static_pointer_cast<T>(take(name, typeid(T).name()));
  }

  template <typename T>
  std::shared_ptr<T> find(const std::string& name) const {
    return contains(name) ? get<T>(name) : nullptr;
  }

  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  void put(const std::string& name, std::shared_ptr<void> object, const char* type);
  std::shared_ptr<void> take(const std::string& name, const char* type) const;

  struct Entry {
    std::shared_ptr<void> object;
    std::string type;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

}  // namespace docflow
