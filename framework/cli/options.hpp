#pragma once
// Shared command-line parsing helpers for the `flow` subcommands.
#include <boost/program_options.hpp>

#include <iostream>
#include <string>

#include "command.hpp"
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

}  // namespace docflow::cli
