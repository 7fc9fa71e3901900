// `flow`: docflow's command line. This executable stays small on purpose:
// the commands that only read a run folder or ask a served flow for its
// health (status, runs, logs, artifact, ping, limits) run here, linked with
// docflow's libraries without tensors, and start in milliseconds. Every
// other command is in libdocflow_cli.so (flow_main.cpp), loaded on demand
// with LibTorch, whose start-up (293 shared libraries, its operator
// registrations) costs 0.5-1 s of CPU: a Kubernetes probe runs `flow ping`
// every few seconds in every pod, and scripts poll `flow status`.
#include <dlfcn.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "command.hpp"
#include "docarray/limits.hpp"
#include "docflow/process_tuning.hpp"
#include "input_limits.hpp"
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
    "Run `flow COMMAND --help` for a command's options, `flow --version` for\n"
    "docflow's version. Exit codes: 0 success, 1 run failed, 2 bad input.\n";

int limits_command(const docflow::cli::Args&) {
  std::cout << "limits on untrusted input (raise one with --input-limit NAME=VALUE):\n";
  for (const auto& line : docarray::limit_names()) std::cout << "  " << line << "\n";
  return docflow::cli::kOk;
}

// A heap on huge pages for the commands that compute (docflow/process_tuning.hpp):
// glibc reads GLIBC_TUNABLES only at a process's start, so `flow` starts
// again with it, here, before the command library and LibTorch are loaded
// (their start-up, 0.5 s of CPU here, is paid once). OpenBLAS's kernels can
// only be asked once it is loaded: that restart is the library's
// (flow_main.cpp), for the CPU models OpenBLAS does not know.
void restart_for_malloc_tunables(char** argv) {
  // A set-user-ID start would have the variable removed by glibc and come
  // back here for ever.
  if (::getauxval(AT_SECURE)) return;
  const std::string tunables = docflow::better_malloc_tunables();  // empty where the user set one
  if (tunables.empty()) return;
  // The path /proc/self/exe points to, not the link: ps, pkill and
  // /proc/PID/comm name a process by the path executed.
  std::error_code no_proc;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", no_proc).string();
  if (no_proc) return;
  ::setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  ::execv(self.c_str(), argv);
  ::unsetenv("GLIBC_TUNABLES");  // the exec failed: the command library tries once more
}

// Where the command library is: beside `flow` in the build tree, in the
// library folder of an installed tree, else wherever the dynamic loader
// finds it (LD_LIBRARY_PATH, the system's folders). An explicit path, not
// `flow`'s RUNPATH: under AddressSanitizer dlopen is called from the
// sanitizer's runtime, whose RUNPATH the loader would search instead.
std::string command_library_path() {
  std::error_code no_proc;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", no_proc);
  if (!no_proc) {
    for (const std::filesystem::path& dir : {self.parent_path(), self.parent_path() / DOCFLOW_LIBDIR_FROM_BINDIR}) {
      const std::filesystem::path candidate = dir / docflow::cli::kCommandLibrary;
      if (::access(candidate.c_str(), R_OK) == 0) return candidate.string();
    }
  }
  return docflow::cli::kCommandLibrary;
}

// Loads the command library and hands it the command. RTLD_GLOBAL: its
// symbols are visible to the plugins it loads, as they were when `flow`
// linked everything.
int run_loaded_command(int argc, char** argv) {
  const std::string path = command_library_path();
  void* library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!library) {
    std::cerr << "flow " << argv[1] << ": cannot load " << docflow::cli::kCommandLibrary
              << ", which runs this command (looked beside flow, in " DOCFLOW_LIBDIR_FROM_BINDIR
                 " from it and where the dynamic loader looks): "
              << ::dlerror() << "\n";
    return docflow::cli::kRunFailed;
  }
  auto* entry = reinterpret_cast<int (*)(int, char**)>(::dlsym(library, docflow::cli::kCommandEntry));
  if (!entry) {
    std::cerr << "flow " << argv[1] << ": " << path << " has no " << docflow::cli::kCommandEntry << ": " << ::dlerror()
              << "\n";
    return docflow::cli::kRunFailed;
  }
  return entry(argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace docflow::cli;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? kBadInput : kOk;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "docflow " DOCFLOW_VERSION "\n";
    return kOk;
  }
  if (is_loaded_command(argv[1])) {
    if (restarts_for_process_settings(argv[1])) restart_for_malloc_tunables(argv);
    return run_loaded_command(argc, argv);
  }
  static const std::map<std::string, int (*)(const Args&)> commands = {
      {"status", status_command}, {"logs", logs_command},   {"runs", runs_command},
      {"artifact", artifact_command}, {"ping", ping_command}, {"limits", limits_command},
  };
  const std::string command = argv[1];
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "flow: unknown command '" << command << "'\n" << kUsage;
    return kBadInput;
  }
  return run_with_limits(command, it->second, argc, argv);
}
