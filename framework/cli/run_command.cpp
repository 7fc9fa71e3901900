// `flow run FILE [--name NAME] [--set K=V]... [--detach]`.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "docflow/flow.hpp"
#include "docflow/process_tuning.hpp"
#include "docflow/run.hpp"
#include "options.hpp"
#include "signal_watcher.hpp"

namespace docflow::cli {
namespace {

std::string default_run_name(const std::string& flow_name) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return flow_name + "-" + buf;
}

// The newest training checkpoint of a run that did not finish, with the
// same flow (the state only makes sense for the executors that saved it).
Checkpoint checkpoint_to_resume(const RunFolder& run, const FlowConfig& config) {
  const RunStatus status = run.status();
  const std::string name = run.path().filename().string();
  if (status.state == "FINISHED") throw Error("run '" + name + "' has finished; there is nothing to resume");
  if (status.state == "STARTED" || status.state == "CREATED")
    throw Error("run '" + name + "' is still going (pid " + std::to_string(status.pid) + "); stop it before resuming");
  std::ifstream saved(run.flow_file());
  std::stringstream was;
  was << saved.rdbuf();
  const std::string now = to_yaml(config);
  if (was.str() != now) {
    std::istringstream a(was.str()), b(now);
    std::string la, lb;
    int line = 1;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) ++line;
    throw Error("the flow differs from the one run '" + name + "' started with (" + run.flow_file().string() + " line " +
                std::to_string(line) + ": '" + la + "', now '" + lb + "'); resume with the same flow file and --set values");
  }
  CheckpointStore store(run.checkpoints_dir(), std::max(1, config.checkpoints));
  std::optional<Checkpoint> latest = store.latest();
  if (!latest)
    throw Error("run '" + name + "' has no training checkpoint yet (" + run.checkpoints_dir().string() +
                "): the flow takes one after each epoch when it sets `checkpoints: N`; start it again instead");
  return *latest;
}

}  // namespace

int run_command(const Args& args) {
  keep_freed_memory();  // before any executor allocates
  po::options_description opts("flow run FILE [options]");
  opts.add_options()("help,h", "this help")("name", po::value<std::string>(), "the run's name (default FLOW-DATE-TIME)")(
      "set", po::value<std::vector<std::string>>(), "override: executors.NAME.with.KEY=VALUE, NAME.KEY=VALUE, with.KEY=VALUE")(
      "detach", "return at once and leave the run going")(
      "resume", po::value<std::string>(), "continue the run NAME from its last training checkpoint")("file", po::value<std::string>(), "flow file");
  po::positional_options_description pos;
  pos.add("file", 1);

  std::string file;
  FlowConfig config;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<RunFolder> run;
  bool detach = false, resumed = false;
  try {
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("file")) throw po::error("needs a flow FILE");
    file = vm["file"].as<std::string>();
    detach = vm.count("detach") > 0;
    flow = std::make_unique<Flow>(Flow::load(file, overrides_of(vm)));
    config = flow->config();
    if (vm.count("resume")) {
      resumed = true;
      if (vm.count("name")) throw po::error("--resume NAME names the run already; drop --name");
      run = std::make_unique<RunFolder>(RunFolder::open(config.workspace, vm["resume"].as<std::string>()));
      flow->resume_from(checkpoint_to_resume(*run, config));
    } else {
      std::string name = vm.count("name") ? vm["name"].as<std::string>() : default_run_name(config.name);
      run = std::make_unique<RunFolder>(RunFolder::create(config.workspace, name, file, to_yaml(config)));
    }
    flow->enable_checkpoints(run->checkpoints_dir());
  } catch (const po::error&) {
    return setup_failed("run");
  } catch (const Error&) {
    return setup_failed("run");
  }

  const std::string run_name = run->path().filename().string();
  if (detach) {
    const pid_t pid = detach_process();
    if (pid < 0) {
      std::cerr << "flow run: cannot detach: fork failed\n";
      return kRunFailed;
    }
    if (pid > 0) {
      std::cout << "run " << run_name << " started in the background (pid " << pid << ")\n"
                << "  flow status " << run_name << " --workspace " << config.workspace << "\n"
                << "  flow logs " << run_name << " --follow --workspace " << config.workspace << "\n";
      return kOk;
    }
  }

  Logger logger;
  logger.set_terminal(!detach);
  logger.open_file(run->log_file().string());
  SignalWatcher signals([&flow] { flow->request_stop(); });
  auto t0 = std::chrono::steady_clock::now();
  try {
    logger.info("flow", "run " + run_name + " of " + file + " in " + run->path().string());
    run->set_state("STARTED");
    if (resumed) logger.info("flow", "resuming run " + run_name);
    flow->open(run->executors_dir(), &logger);
    RunStats stats;
    try {
      stats = flow->run();
    } catch (...) {
      flow->close();  // every opened executor is closed, then the failure is reported
      throw;
    }
    flow->close();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.2f", secs);
    std::string summary = std::to_string(stats.requests) + " requests, " + std::to_string(stats.documents) +
                          " documents, " + std::to_string(stats.epochs) + " epoch(s) in " + seconds + " s";
    if (stats.seconds > 0)
      logger.info("flow", "the source produced data for " + std::to_string(static_cast<int>(100 * stats.source_seconds / stats.seconds)) +
                              "% of the run (" + std::to_string(stats.source_seconds).substr(0, 6) + " s)");
    run->set_state("FINISHED", summary);
    logger.info("flow", "finished: " + summary);
    return kOk;
  } catch (const std::exception& e) {
    run->set_state("FAILED", e.what());
    logger.error("flow", std::string("run failed: ") + e.what());
    return kRunFailed;
  }
}

}  // namespace docflow::cli
