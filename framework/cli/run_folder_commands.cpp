// `flow status | logs | artifact | runs`: what a run folder holds. They
// run in `flow` itself, without LibTorch (main.cpp).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "docflow/run.hpp"
#include "options.hpp"

namespace docflow::cli {
namespace {

po::options_description run_lookup_options(const char* title) {
  po::options_description opts(title);
  opts.add_options()("help,h", "this help")("workspace,w", po::value<std::string>()->default_value("runs"),
                                            "the folder that holds the runs")(
      "name", po::value<std::string>(), "the run's name");
  return opts;
}
}  // namespace

int status_command(const Args& args) {
  return guarded("status", [&] {
    auto opts = run_lookup_options("flow status NAME [--workspace DIR]");
    po::positional_options_description pos;
    pos.add("name", 1);
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("name")) throw po::error("needs a run NAME (see flow runs)");
    RunFolder run = RunFolder::open(vm["workspace"].as<std::string>(), vm["name"].as<std::string>());
    RunStatus s = run.status();
    std::cout << "run:      " << s.name << "\nstate:    " << s.state << "\nflow:     " << s.flow_file
              << "\ncreated:  " << s.created_at << "\nstarted:  " << s.started_at << "\nfinished: " << s.finished_at
              << "\nfolder:   " << run.path().string() << "\n";
    if (!s.details.empty()) std::cout << "details:  " << s.details << "\n";
    return kOk;
  });
}

int logs_command(const Args& args) {
  return guarded("logs", [&] {
    auto opts = run_lookup_options("flow logs NAME [--follow] [--workspace DIR]");
    opts.add_options()("follow,f", "keep printing until the run ends");
    po::positional_options_description pos;
    pos.add("name", 1);
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("name")) throw po::error("needs a run NAME (see flow runs)");
    RunFolder run = RunFolder::open(vm["workspace"].as<std::string>(), vm["name"].as<std::string>());
    std::ifstream log(run.log_file());
    std::string line;
    for (;;) {
      while (std::getline(log, line)) std::cout << line << "\n";
      std::cout.flush();
      if (!vm.count("follow")) break;
      std::string state = run.status().state;
      if (state == "FINISHED" || state == "FAILED" || state == "DIED") {
        log.clear();
        while (std::getline(log, line)) std::cout << line << "\n";
        break;
      }
      log.clear();  // at EOF: wait for more
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return kOk;
  });
}

int artifact_command(const Args& args) {
  return guarded("artifact", [&] {
    auto opts = run_lookup_options("flow artifact NAME -o DIR [--workspace DIR]");
    opts.add_options()("output,o", po::value<std::string>(), "where to copy the artifact (must not exist)");
    po::positional_options_description pos;
    pos.add("name", 1);
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("name") || !vm.count("output")) throw po::error("needs a run NAME and -o DIR");
    RunFolder run = RunFolder::open(vm["workspace"].as<std::string>(), vm["name"].as<std::string>());
    const std::filesystem::path from = run.path() / "artifact", to = vm["output"].as<std::string>();
    if (!std::filesystem::is_directory(from))
      throw Error("run '" + run.path().filename().string() + "' has no artifact yet (a Checkpointer writes " +
                  from.string() + " after the first epoch that improves its metric)");
    if (std::filesystem::exists(to)) throw Error(to.string() + " already exists; choose a new folder");
    std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
    std::cout << "copied " << from.string() << " to " << to.string() << "\n";
    return kOk;
  });
}

int runs_command(const Args& args) {
  return guarded("runs", [&] {
    auto opts = run_lookup_options("flow runs [--workspace DIR]");
    po::positional_options_description pos;
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    auto runs = RunFolder::list(vm["workspace"].as<std::string>());
    if (runs.empty()) {
      std::cout << "no runs in " << vm["workspace"].as<std::string>() << "\n";
      return kOk;
    }
    std::cout << pad("NAME", 32) << pad("STATE", 10) << pad("CREATED", 22) << pad("FINISHED", 22) << "DETAILS\n";
    for (const auto& r : runs) {
      std::string details = r.details.size() > 60 ? r.details.substr(0, 57) + "..." : r.details;
      std::cout << pad(r.name, 32) << pad(r.state, 10) << pad(r.created_at, 22) << pad(r.finished_at, 22) << details
                << "\n";
    }
    return kOk;
  });
}

}  // namespace docflow::cli
