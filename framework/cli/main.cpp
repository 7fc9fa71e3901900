// `flow`: docflow's command line.
#include <iostream>
#include <string>

#include "command.hpp"

namespace {
const char* kUsage =
    "usage: flow COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  docs show FILE      summarise a document file (binary or JSON Lines)\n"
    "  docs convert IN OUT convert between the binary format and JSON Lines\n"
    "\n"
    "Run `flow COMMAND --help` for a command's options. Exit codes: 0 success,\n"
    "1 run failed, 2 bad input.\n";
}

int main(int argc, char** argv) {
  using namespace docflow::cli;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? kBadInput : kOk;
  }
  std::string command = argv[1];
  Args rest(argv + 2, argv + argc);
  try {
    if (command == "docs") return docs_command(rest);
  } catch (const std::exception& e) {
    std::cerr << "flow " << command << ": " << e.what() << "\n";
    return kRunFailed;
  }
  std::cerr << "flow: unknown command '" << command << "'\n" << kUsage;
  return kBadInput;
}
