// libdocflow_cli.so: the `flow` commands that load flows, plugins, documents
// or models, and with them LibTorch. The `flow` executable (main.cpp) loads
// this library only for them and calls docflow_cli_main with its own
// arguments.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "command.hpp"
#include "docflow/isolation.hpp"
#include "docflow/process_tuning.hpp"
#include "input_limits.hpp"
#include "process_settings_commands.hpp"

namespace {

// What a bug report or a benchmark needs to know of the machine: the kernels
// the products run on. bench.sh gives its peers the same.
int info_command(const docflow::cli::Args& args) {
  if (!args.empty()) {
    const bool help = args[0] == "--help" || args[0] == "-h";
    (help ? std::cout : std::cerr) << (help ? "" : "flow info: unexpected argument '" + args[0] + "'\n")
                                   << "usage: flow info   (the cores, the BLAS and its kernels, malloc's settings)\n";
    return help ? docflow::cli::kOk : docflow::cli::kBadInput;
  }
  std::cout << "cores: " << std::thread::hardware_concurrency() << "\n";
  const std::string kernels = docflow::openblas_kernels();
  std::cout << "blas: " << (kernels.empty() ? "not OpenBLAS" : "OpenBLAS") << "\n";
  if (!kernels.empty()) std::cout << "blas kernels: " << kernels << "\n";
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::cout << "OPENBLAS_CORETYPE: " << (coretype ? coretype : "(not set)") << "\n";
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  std::cout << "GLIBC_TUNABLES: " << (tunables ? tunables : "(not set)") << "\n";
  return docflow::cli::kOk;
}

}  // namespace

extern "C" int docflow_cli_main(int argc, char** argv) {
  using namespace docflow::cli;
  static const std::map<std::string, int (*)(const Args&)> commands = {
      {"docs", docs_command},     {"run", run_command},           {"validate", validate_command},
      {"plot", plot_command},     {"plugins", plugins_command},   {"serve", serve_command},
      {"executor", executor_command}, {"post", post_command},     {"export", export_command},
      {"info", info_command},
  };
  const std::string command = argc >= 2 ? argv[1] : "";
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "flow: '" << command << "' is not a command of " << kCommandLibrary << "\n";
    return kBadInput;
  }
  std::error_code no_proc;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", no_proc).string();
  // First, before any thread or file exists: OpenBLAS's right kernels for a
  // CPU model newer than it (process_tuning.hpp), for the commands that
  // compute. `flow` set the heap's setting before loading this library
  // (main.cpp); OpenBLAS's choice can only be known now that it is loaded,
  // and a restart from here loads LibTorch a second time (0.45 s here).
  if (!no_proc && restarts_for_process_settings(argv[1])) docflow::restart_with_better_process_settings(self, argv);
  // Isolated executors run in `flow` processes of their own: this one.
  if (!no_proc) docflow::set_flow_executable(self);
  return run_with_limits(command, it->second, argc, argv);
}
