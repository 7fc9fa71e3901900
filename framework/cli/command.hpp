#pragma once
// The `flow` command line: each subcommand is a function of its arguments
// (after the subcommand's name) returning the process exit code.
//
// Two parts: the `flow` executable runs the commands that read a run folder
// or ping a served flow (main.cpp, linked with docflow's libraries without
// tensors), and loads libdocflow_cli.so (flow_main.cpp, linked with
// LibTorch) for every other command.
#include <cstring>
#include <string>
#include <vector>

namespace docflow::cli {

// Exit codes, the same for every command.
constexpr int kOk = 0;
constexpr int kRunFailed = 1;
constexpr int kBadInput = 2;

using Args = std::vector<std::string>;

// The commands libdocflow_cli.so runs; `flow` runs the others itself.
inline bool is_loaded_command(const char* command) noexcept {
  for (const char* c : {"docs", "run", "validate", "plot", "plugins", "serve", "executor", "post", "export", "info"})
    if (std::strcmp(command, c) == 0) return true;
  return false;
}

// libdocflow_cli.so's entry, `flow`'s main() for a loaded command (argv[1]).
extern "C" int docflow_cli_main(int argc, char** argv);
constexpr const char* kCommandLibrary = "libdocflow_cli.so";
constexpr const char* kCommandEntry = "docflow_cli_main";

int docs_command(const Args& args);
int run_command(const Args& args);
int status_command(const Args& args);
int logs_command(const Args& args);
int runs_command(const Args& args);
int validate_command(const Args& args);
int plot_command(const Args& args);
int plugins_command(const Args& args);
int artifact_command(const Args& args);
int serve_command(const Args& args);
int executor_command(const Args& args);
int ping_command(const Args& args);
int post_command(const Args& args);
int export_command(const Args& args);

}  // namespace docflow::cli
