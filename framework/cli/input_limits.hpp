#pragma once
// `--input-limit NAME=VALUE`, which every `flow` command takes.
#include <exception>
#include <iostream>
#include <string>

#include "command.hpp"
#include "docarray/error.hpp"
#include "docarray/limits.hpp"

namespace docflow::cli {

// Takes every `--input-limit NAME=VALUE` (or `--input-limit=NAME=VALUE`) out of the
// arguments and applies it, before any command reads input.
inline Args apply_limits(const Args& args) {
  Args rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--input-limit") {
      if (i + 1 == args.size()) throw docarray::Error("--input-limit expects NAME=VALUE");
      docarray::set_limit(args[++i]);
    } else if (args[i].rfind("--input-limit=", 0) == 0) {
      docarray::set_limit(args[i].substr(14));
    } else {
      rest.push_back(args[i]);
    }
  }
  return rest;
}

// Runs `command` on argv[2...] with the limits applied: exit 2 for a bad
// limit, 1 for what the command throws (its message on stderr).
inline int run_with_limits(const std::string& name, int (*command)(const Args&), int argc, char** argv) {
  Args args;
  try {
    args = apply_limits(Args(argv + 2, argv + argc));
  } catch (const docarray::Error& e) {
    std::cerr << "flow " << name << ": " << e.what() << "\n";
    return kBadInput;
  }
  try {
    return command(args);
  } catch (const std::exception& e) {
    std::cerr << "flow " << name << ": " << e.what() << "\n";
    return kRunFailed;
  }
}

}  // namespace docflow::cli
