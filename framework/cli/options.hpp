#pragma once
// Shared command-line parsing helpers for the `flow` subcommands.
#include <boost/program_options.hpp>

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "command.hpp"
#include "docflow/client_options.hpp"
#include "docflow/flow_config.hpp"

namespace docflow::cli {

namespace po = boost::program_options;

inline po::variables_map parse_args(const Args& args, const po::options_description& named,
                                    const po::positional_options_description& pos) {
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(named).positional(pos).run(), vm);
  po::notify(vm);
  return vm;
}

// Prints the usage (and `preamble`) when --help was given.
inline bool help_shown(const po::variables_map& vm, const po::options_description& opts, const char* preamble = nullptr) {
  if (!vm.count("help")) return false;
  if (preamble) std::cout << preamble << "\n";
  std::cout << opts;
  return true;
}

inline std::vector<Override> overrides_of(const po::variables_map& vm) {
  std::vector<Override> out;
  if (vm.count("set"))
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) out.push_back(Override{s});
  return out;
}

// The bearer token of `flow serve`, `flow ping` and `flow post`: the one line
// of --token-file (trailing whitespace dropped; empty or several lines is an
// error), else DOCFLOW_TOKEN, else none.
inline std::string token_of(const po::variables_map& vm) {
  return vm.count("token-file") ? read_token_file(vm["token-file"].as<std::string>()) : default_token();
}

// `s` in a table column of `width` characters (at least one space after it).
inline std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

// Runs `body`, turning bad input into exit code 2 with the message.
template <typename F>
int guarded(const char* command, F body) {
  try {
    return body();
  } catch (const po::error& e) {
    std::cerr << "flow " << command << ": " << e.what() << " (see flow " << command << " --help)\n";
    return kBadInput;
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return kBadInput;
  } catch (const Error& e) {
    std::cerr << "flow " << command << ": " << e.what() << "\n";
    return kBadInput;
  }
}

// In a catch (...) around a command's setup: says what is wrong with its
// input the way every command does, and returns kBadInput. Exceptions that
// are not about the input go on to main() (exit 1).
inline int setup_failed(const std::string& command) {
  try {
    throw;
  } catch (const po::error& e) {
    std::cerr << "flow " << command << ": " << e.what() << " (see flow " << command << " --help)\n";
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
  } catch (const Error& e) {
    std::cerr << "flow " << command << ": " << e.what() << "\n";
  }
  return kBadInput;
}

// --detach: the parent gets the child's pid; the child, in a session of its
// own with the standard streams on /dev/null, gets 0; -1 when fork failed.
inline pid_t detach_process() {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setsid();
  if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
    std::_Exit(kRunFailed);
  return 0;
}

}  // namespace docflow::cli
