#pragma once
// Whether this kernel gives transparent huge pages to a process that asks
// (madvise) and only then: where `flow` asks malloc for them
// (docflow::better_malloc_tunables; the tests read the same file on their own).
#include <fstream>
#include <string>

namespace docflow::testing {

inline bool huge_pages_only_when_asked() {
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  return std::getline(mode, line) && line.find("[madvise]") != std::string::npos;
}

}  // namespace docflow::testing
