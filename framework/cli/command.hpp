#pragma once
// The `flow` command line: each subcommand is a function of its arguments
// (after the subcommand's name) returning the process exit code.
#include <string>
#include <vector>

namespace docflow::cli {

// Exit codes, the same for every command.
constexpr int kOk = 0;
constexpr int kRunFailed = 1;
constexpr int kBadInput = 2;

using Args = std::vector<std::string>;

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
