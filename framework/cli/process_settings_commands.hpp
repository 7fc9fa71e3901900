#pragma once
// The `flow` commands that start again with better process settings
// (docflow/process_tuning.hpp): those that compute. `flow ping` or `flow
// status` would pay a restart for nothing. One list for both restarts:
// `flow`'s own for the heap (main.cpp) and the command library's for
// OpenBLAS (flow_main.cpp).
#include <cstring>

namespace docflow::cli {

inline bool restarts_for_process_settings(const char* command) noexcept {
  for (const char* c : {"run", "serve", "executor", "info"})
    if (std::strcmp(command, c) == 0) return true;
  return false;
}

}  // namespace docflow::cli
