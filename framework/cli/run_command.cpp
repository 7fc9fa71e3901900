// `flow run FILE [--name NAME] [--set K=V]... [--detach] [--resume NAME]`,
// and a distributed run: `--nproc-per-node N` (with `--nnodes M --node-rank R
// --master-addr A --master-port P` across machines) starts the ranks, and a
// process with torchrun's environment (WORLD_SIZE, RANK, ...) is one of them;
// one with torchrun's launcher variables (PET_NPROC_PER_NODE, ...: Kubeflow's
// training operator with nprocPerNode) is the launcher.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "docflow/flow.hpp"
#include "docflow/process_group.hpp"
#include "docflow/process_tuning.hpp"
#include "docflow/run.hpp"
#include "options.hpp"
#include "rank_launcher.hpp"
#include "signal_watcher.hpp"

namespace docflow::cli {
namespace {

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


// Ranks other than 0 run the same flow with a folder of their own inside
// the run's (runs/NAME/ranks/R: their log and what their executors write);
// the run's status, checkpoints and artifacts are rank 0's.
int run_other_rank(Flow& flow, ProcessGroup& group, const std::filesystem::path& dir, const std::string& file, bool resumed) {
  Logger logger;
  logger.set_terminal(false);  // one terminal, rank 0's; the launcher reports how this rank ended
  logger.open_file((dir / "run.log").string());
  SignalWatcher signals([&flow] { flow.request_stop(); });
  try {
    logger.info("flow", "run of " + file + " as " + group.environment().describe() + (resumed ? ", resuming" : ""));
    flow.open(dir / "executors", &logger);
    try {
      flow.run();
    } catch (...) {
      flow.close();
      throw;
    }
    flow.close();
    logger.info("flow", "finished");
    return kOk;
  } catch (const std::exception& e) {
    logger.error("flow", std::string("run failed: ") + e.what());
    std::cerr << "flow run: rank " << group.rank() << ": " << e.what() << "\n";
    return kRunFailed;
  }
}

// What rank 0 tells the other ranks once the run folder is settled: the
// run's name and the checkpoint it resumes from, or why it could not start.
constexpr const char* kRunKey = "run";

struct RunSetup {
  std::string name;
  std::filesystem::path checkpoint;  // empty: a new run
};

void publish_setup(ProcessGroup& group, const std::string& value) { group.store_set(kRunKey, value); }

RunSetup await_setup(ProcessGroup& group) {
  const std::string v = group.store_get(kRunKey);
  if (v.rfind("error\n", 0) == 0) throw Error("rank 0 could not start the run: " + v.substr(6));
  const auto nl = v.find('\n', 3);
  return RunSetup{v.substr(3, nl - 3), nl == std::string::npos ? "" : v.substr(nl + 1)};
}

// The launcher's side of `--nproc-per-node`: starts this node's ranks with
// the same run arguments and reports how each ended.
// `from_variables`: started as torchrun would be (the training operator's
// PET_* variables): those are the defaults, and the WORLD_SIZE and RANK the
// operator sets beside them describe the pods, not the ranks started here.
int launch(const po::variables_map& vm, const std::string& file, const FlowConfig& config,
           const std::optional<LaunchOptions>& from_variables) {
  if (!from_variables && environment_from_variables())
    throw Error("--nproc-per-node in a process that is already a rank (WORLD_SIZE is set, by torchrun?): "
                "let one launcher start the ranks");
  LaunchOptions o = from_variables.value_or(LaunchOptions{});
  if (vm.count("nproc-per-node")) o.nproc_per_node = vm["nproc-per-node"].as<int>();
  if (!vm["nnodes"].defaulted()) o.nnodes = vm["nnodes"].as<int>();
  if (!vm["node-rank"].defaulted()) o.node_rank = vm["node-rank"].as<int>();
  if (vm.count("master-addr")) o.master_addr = vm["master-addr"].as<std::string>();
  if (vm.count("master-port")) o.master_port = vm["master-port"].as<int>();
  o.timeout_s = vm["dist-timeout"].as<double>();
  if (!(o.timeout_s > 0)) throw Error("--dist-timeout must be a positive number of seconds");
  Args run_args{file};
  if (vm.count("set"))
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) run_args.insert(run_args.end(), {"--set", s});
  std::string name;
  if (vm.count("resume")) {
    name = vm["resume"].as<std::string>();
    run_args.insert(run_args.end(), {"--resume", name});
  } else if (vm.count("name") || o.node_rank == 0) {
    // Rank 0 publishes the name to every rank; this node's launcher picks
    // it so that it can say where the run is.
    name = vm.count("name") ? vm["name"].as<std::string>() : RunFolder::reserve_default_name(config.workspace, config.name);
    run_args.insert(run_args.end(), {"--name", name});
  }
  if (vm.count("detach")) {
    const pid_t pid = detach_process();
    if (pid < 0) throw Error("cannot detach: fork failed");
    if (pid > 0) {
      std::cout << "run " << name << " started in the background on " << o.nproc_per_node * o.nnodes << " processes (launcher pid "
                << pid << ")\n  flow status " << name << " --workspace " << config.workspace << "\n";
      return kOk;
    }
  }
  const std::vector<RankExit> exits = launch_ranks(o, run_args);
  std::vector<std::string> failures;
  for (const auto& e : exits)
    if (e.code != 0) failures.push_back(e.describe());
  if (failures.empty()) return kOk;
  std::string summary;
  for (const auto& f : failures) summary += (summary.empty() ? "" : "; ") + f;
  std::cerr << "flow run: " << summary << "\n";
  if (o.node_rank == 0 && !name.empty()) {
    // Rank 0 wrote FAILED with what it saw, or died before it could: say
    // which rank ended how, beside it.
    try {
      RunFolder run = RunFolder::open(config.workspace, name);
      const RunStatus st = run.status();
      // Only this launch's run (rank 0's pid): a name that was taken
      // already belongs to another run, left as it is.
      if (st.state != "FINISHED" && st.pid == exits.front().pid)
        run.set_state("FAILED", summary + (st.state == "FAILED" && !st.details.empty() ? "; rank 0: " + st.details : ""));
      std::cerr << "  the other ranks' logs: " << (run.path() / "ranks").string() << "/RANK/run.log\n";
    } catch (const Error&) {
      // rank 0 failed before the run folder existed; its message is above
    }
  }
  return kRunFailed;
}

}  // namespace

int run_command(const Args& args) {
  // Before any executor allocates and any thread starts (process_tuning.hpp).
  keep_freed_memory();
  one_heap_for_all_threads();
  po::options_description opts("flow run FILE [options]");
  opts.add_options()("help,h", "this help")("name", po::value<std::string>(), "the run's name (default FLOW-DATE-TIME)")(
      "set", po::value<std::vector<std::string>>(), "override: executors.NAME.with.KEY=VALUE, NAME.KEY=VALUE, with.KEY=VALUE")(
      "detach", "return at once and leave the run going")(
      "resume", po::value<std::string>(), "continue the run NAME from its last training checkpoint")(
      "nproc-per-node", po::value<int>(), "start N ranks of a distributed run on this machine (torchrun's --nproc-per-node)")(
      "nnodes", po::value<int>()->default_value(1), "machines in the run, each started with its own `flow run`")(
      "node-rank", po::value<int>()->default_value(0), "this machine's number, 0 to nnodes-1 (0 serves the store)")(
      "master-addr", po::value<std::string>(), "node 0's address (needed with --nnodes > 1)")(
      "master-port", po::value<int>(), "the store's port on node 0 (default with one node: a free port)")(
      "dist-timeout", po::value<double>()->default_value(30.0),
      "seconds a rank waits for the others before the run fails (a rank that died or hangs)")(
      "file", po::value<std::string>(), "flow file");
  po::positional_options_description pos;
  pos.add("file", 1);

  std::string file;
  FlowConfig config;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<RunFolder> run;          // rank 0's (the run's) folder
  std::filesystem::path rank_dir;          // another rank's own folder, inside the run's
  std::shared_ptr<ProcessGroup> group;
  bool detach = false, resumed = false;
  try {
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("file")) throw po::error("needs a flow FILE");
    file = vm["file"].as<std::string>();
    detach = vm.count("detach") > 0;
    if (vm.count("resume") && vm.count("name")) throw po::error("--resume NAME names the run already; drop --name");
    flow = std::make_unique<Flow>(Flow::load(file, overrides_of(vm)));
    config = flow->config();
    const std::optional<LaunchOptions> from_variables = launch_options_from_variables();
    if (vm.count("nproc-per-node") || vm["nnodes"].as<int>() > 1 || vm.count("master-addr") || vm.count("master-port") ||
        from_variables)
      return launch(vm, file, config, from_variables);

    const std::optional<DistributedEnvironment> env = environment_from_variables();
    if (env && env->distributed()) {
      if (detach) throw Error("--detach in a rank of a distributed run: detach the launcher instead");
      // Each rank its share of this machine's cores unless the user chose.
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      set_compute_threads(std::max(1, cores / env->local_world_size));
      group = ProcessGroup::create(*env);
      group->check_same("resolved flow", to_yaml(config));
    }
    const int rank = group ? group->rank() : 0;
    if (rank == 0) {
      try {
        if (vm.count("resume")) {
          resumed = true;
          run = std::make_unique<RunFolder>(RunFolder::open(config.workspace, vm["resume"].as<std::string>()));
          flow->resume_from(checkpoint_to_resume(*run, config));
        } else {
          std::string name = vm.count("name") ? vm["name"].as<std::string>() : RunFolder::reserve_default_name(config.workspace, config.name);
          run = std::make_unique<RunFolder>(RunFolder::create(config.workspace, name, file, to_yaml(config)));
        }
        flow->enable_checkpoints(run->checkpoints_dir());
      } catch (const std::exception& e) {
        if (group) publish_setup(*group, std::string("error\n") + e.what());
        throw;
      }
      if (group) {
        const std::string from = resumed ? CheckpointStore(run->checkpoints_dir(), 1).latest()->path.string() : "";
        publish_setup(*group, "ok\n" + run->path().filename().string() + "\n" + from);
      }
    } else {
      const RunSetup setup = await_setup(*group);
      const std::filesystem::path run_path = std::filesystem::path(config.workspace) / setup.name;
      rank_dir = run_path / "ranks" / std::to_string(rank);
      std::filesystem::create_directories(rank_dir);
      if (!setup.checkpoint.empty()) {
        resumed = true;
        const std::optional<Checkpoint> latest = CheckpointStore(run_path / "checkpoints", 1).latest();
        if (!latest || latest->path != setup.checkpoint)
          throw Error("rank " + std::to_string(rank) + " cannot see the checkpoint " + setup.checkpoint.string() +
                      " rank 0 resumes from: across machines, --resume needs the workspace on a shared file system");
        flow->resume_from(*latest);
      }
    }
    if (group) flow->join_group(group);
  } catch (const po::error&) {
    return setup_failed("run");
  } catch (const Error&) {
    return setup_failed("run");
  }

  if (!run) return run_other_rank(*flow, *group, rank_dir, file, resumed);
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
    logger.info("flow", "run " + run_name + " of " + file + " in " + run->path().string() +
                            (group ? " as " + group->environment().describe() : ""));
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
