// `flow`: docflow's command line.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "command.hpp"
#include "docarray/error.hpp"
#include "docarray/limits.hpp"
#include "docflow/isolation.hpp"
#include "docflow/process_tuning.hpp"
#include "process_settings_commands.hpp"

namespace {
const char* kUsage =
    "usage: flow COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  run FILE [--name N] [--set K=V]... [--detach]   run a flow in a run folder\n"
    "  serve FILE [--name N] [--port P] [--detach]    serve a flow with Jina's HTTP API\n"
    "  executor --uses NAME [--port P] [--set K=V]   serve one executor, for flows to use remotely\n"
    "  export kubernetes|compose FILE OUT             manifests that run the flow on Kubernetes or Compose\n"
    "  ping URL                                       exit 0 when a served flow is healthy\n"
    "  post URL ENDPOINT --data FILE [-o OUT]         send documents to a served flow\n"
    "  status NAME                                    a run's state and details\n"
    "  logs NAME [--follow]                           a run's log\n"
    "  runs                                           the runs, as a table\n"
    "  artifact NAME -o DIR                           copy a run's best model out (Finetuner's save_artifact)\n"
    "  validate FILE [--set K=V]...                   check a flow without running it\n"
    "  plot FILE [-o OUT]                             the flow's graph as DOT (or SVG with `dot`)\n"
    "  plugins [describe NAME]                        the executors plugins provide\n"
    "  docs show FILE | docs convert IN OUT           look inside document files\n"
    "  limits                                         the limits on untrusted input\n"
    "  info                                           what docflow found on this machine\n"
    "\n"
    "Every command takes --input-limit NAME=VALUE (repeatable) to raise a limit on\n"
    "untrusted input; `flow limits` lists them with their values.\n"
    "\n"
    "Run `flow COMMAND --help` for a command's options. Exit codes: 0 success,\n"
    "1 run failed, 2 bad input.\n";

// Takes every `--input-limit NAME=VALUE` (or `--input-limit=NAME=VALUE`) out of the
// arguments and applies it, before any command reads input.
std::vector<std::string> apply_limits(std::vector<std::string> args) {
  std::vector<std::string> rest;
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

int limits_command(const docflow::cli::Args&) {
  std::cout << "limits on untrusted input (raise one with --input-limit NAME=VALUE):\n";
  for (const auto& line : docarray::limit_names()) std::cout << "  " << line << "\n";
  return docflow::cli::kOk;
}

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
}

int main(int argc, char** argv) {
  using namespace docflow::cli;
  std::error_code no_proc;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", no_proc).string();
  // First, before any thread or file exists: OpenBLAS's right kernels for a
  // CPU model newer than it and a heap on huge pages (process_tuning.hpp),
  // for the commands that compute. The heap's setting was normally applied
  // before any library initialised (early_restart.cpp); OpenBLAS's choice
  // can only be known now, and a restart from here loads LibTorch a second
  // time (0.45 s here), which `flow ping` or `flow status` would pay for nothing.
  if (argc >= 2 && !no_proc && restarts_for_process_settings(argv[1]))
    docflow::restart_with_better_process_settings(self, argv);
  // Isolated executors run in `flow` processes of their own: this one.
  if (!no_proc) docflow::set_flow_executable(self);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? kBadInput : kOk;
  }
  static const std::map<std::string, int (*)(const Args&)> commands = {
      {"docs", docs_command},         {"run", run_command},   {"status", status_command},
      {"logs", logs_command},         {"runs", runs_command}, {"validate", validate_command},
      {"plot", plot_command},         {"plugins", plugins_command}, {"artifact", artifact_command},
      {"limits", limits_command},     {"serve", serve_command}, {"ping", ping_command},
      {"post", post_command},         {"executor", executor_command},
      {"export", export_command},     {"info", info_command},
  };
  std::string command = argv[1];
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "flow: unknown command '" << command << "'\n" << kUsage;
    return kBadInput;
  }
  Args args;
  try {
    args = apply_limits(Args(argv + 2, argv + argc));
  } catch (const docarray::Error& e) {
    std::cerr << "flow " << command << ": " << e.what() << "\n";
    return kBadInput;
  }
  try {
    return it->second(args);
  } catch (const std::exception& e) {
    std::cerr << "flow " << command << ": " << e.what() << "\n";
    return kRunFailed;
  }
}
