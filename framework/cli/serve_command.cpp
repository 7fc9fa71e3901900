// `flow serve FILE [--name NAME] [--host H] [--port P] [--set K=V]... [--detach]`:
// serves a flow with Jina's HTTP API until SIGTERM or Ctrl-C.
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "docflow/flow.hpp"
#include "docflow/gateway.hpp"
#include "docflow/process_tuning.hpp"
#include "docflow/run.hpp"
#include "options.hpp"
#include "signal_watcher.hpp"

namespace docflow::cli {
namespace {

// The parent of a detached service waits until the child serves (or fails),
// so that the address it prints is live.
int wait_for_child(const RunFolder& run, pid_t pid, int timeout_ready_ms) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(timeout_ready_ms < 0 ? 24 * 3600 * 1000 : timeout_ready_ms + 10000);
  const std::string name = run.path().filename().string();
  while (std::chrono::steady_clock::now() < deadline) {
    RunStatus s = run.status();
    if (s.state == "SERVING" && s.pid == pid) {
      std::cout << "serving " << name << " on " << s.address << " in the background (pid " << pid << ")\n"
                << "  flow status " << name << " --workspace " << run.path().parent_path().string() << "\n"
                << "  kill " << pid << "   (stops it gracefully)\n";
      return kOk;
    }
    if (s.state == "FAILED" || s.state == "DIED") {
      std::cerr << "flow serve: " << name << " failed: " << s.details << "\n";
      return kRunFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "flow serve: " << name << " did not start serving in time (pid " << pid << "); see flow logs " << name << "\n";
  return kRunFailed;
}

}  // namespace

int serve_command(const Args& args) {
  keep_freed_memory();
  po::options_description opts("flow serve FILE [options]");
  opts.add_options()("help,h", "this help")("name", po::value<std::string>(), "the service's name: its run folder (default: the flow's name)")(
      "host", po::value<std::string>(), "address to listen on (default 127.0.0.1, or the flow's `host`)")(
      "port", po::value<int>(), "port (default 12345, or the flow's `port`; 0 picks a free one)")(
      "set", po::value<std::vector<std::string>>(), "override: executors.NAME.with.KEY=VALUE, NAME.KEY=VALUE, with.KEY=VALUE")(
      "detach", "return once it serves and leave it running")(
      "isolate", "run every executor in a child process of its own, started again when it crashes (restarts: N per executor)")(
      "token-file", po::value<std::string>(), "require `Authorization: Bearer TOKEN` (the file's one line; or DOCFLOW_TOKEN)")(
      "monitoring", "serve Prometheus metrics at /metrics on --port-monitoring")(
      "port-monitoring", po::value<int>(), "the metrics port (default: the flow's `port_monitoring`, or a free one)")(
      "max-body-bytes", po::value<std::size_t>(), "largest request body (default 64 MiB)")(
      "max-docs", po::value<std::size_t>(), "most documents per request (default 10000)")(
      "max-connections", po::value<std::size_t>(), "most open connections (default 1024)")(
      "max-bytes-in-flight", po::value<std::size_t>(), "request bodies held at once, all connections (default 1 GiB)")(
      "idle-timeout-ms", po::value<int>(), "close keep-alive connections idle this long (default 60000)")(
      "read-timeout-ms", po::value<int>(), "a request must arrive whole within this (default 10000)")(
      "grace-ms", po::value<int>(), "on SIGTERM, time to finish the requests in flight (default 10000)")(
      "io-threads", po::value<int>(), "network threads (default 2)")(
      "compute-threads", po::value<int>(),
      "threads per request's math (LibTorch, BLAS); default 1 when requests run side by side (prefetch > 1), "
      "else every core; OMP_NUM_THREADS or OPENBLAS_NUM_THREADS, when set, decide")("file", po::value<std::string>(), "flow file");
  po::positional_options_description pos;
  pos.add("file", 1);

  std::string file;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<RunFolder> run;
  GatewayOptions options;
  bool detach = false;
  int grace_ms = 10000;
  int timeout_ready_ms = 600000;
  int compute_threads = 0;  // 0: the default
  try {
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("file")) throw po::error("needs a flow FILE");
    file = vm["file"].as<std::string>();
    detach = vm.count("detach") > 0;
    flow = std::make_unique<Flow>(Flow::load(file, overrides_of(vm)));
    if (vm.count("isolate")) {
      // Every executor of this process in a child process of its own.
      FlowConfig isolated = flow->config();
      for (auto& e : isolated.executors)
        if (e.remote.empty() && !flow->plugins().find(e.uses).is_source) e.isolate = true;
      flow = std::make_unique<Flow>(Flow::from_config(isolated));
    }
    const FlowConfig& config = flow->config();
    options = GatewayOptions::from(config.serve);
    timeout_ready_ms = config.serve.timeout_ready_ms;
    if (vm.count("host")) options.host = vm["host"].as<std::string>();
    if (vm.count("port")) options.port = vm["port"].as<int>();
    if (options.port < 0 || options.port > 65535) throw po::error("--port expects 0 to 65535");
    if (vm.count("monitoring")) options.monitoring = true;
    if (vm.count("port-monitoring")) options.port_monitoring = vm["port-monitoring"].as<int>();
    if (vm.count("max-body-bytes")) options.max_body_bytes = vm["max-body-bytes"].as<std::size_t>();
    if (vm.count("max-docs")) options.max_docs = vm["max-docs"].as<std::size_t>();
    if (vm.count("max-connections")) options.max_connections = vm["max-connections"].as<std::size_t>();
    if (vm.count("max-bytes-in-flight")) options.max_bytes_in_flight = vm["max-bytes-in-flight"].as<std::size_t>();
    if (vm.count("idle-timeout-ms")) options.idle_timeout_ms = vm["idle-timeout-ms"].as<int>();
    if (vm.count("read-timeout-ms")) options.read_timeout_ms = vm["read-timeout-ms"].as<int>();
    if (vm.count("io-threads")) options.io_threads = vm["io-threads"].as<int>();
    if (vm.count("grace-ms")) grace_ms = vm["grace-ms"].as<int>();
    if (vm.count("compute-threads") && (compute_threads = vm["compute-threads"].as<int>()) < 1)
      throw po::error("--compute-threads expects at least 1");
    if (compute_threads == 0 && config.prefetch > 1) compute_threads = 1;
    if (options.idle_timeout_ms <= 0 || options.read_timeout_ms <= 0 || grace_ms < 0 || options.io_threads < 1)
      throw po::error("timeouts must be positive and --io-threads at least 1");
    options.token = token_of(vm);
    const std::string name = vm.count("name") ? vm["name"].as<std::string>() : config.name;
    run = std::make_unique<RunFolder>(RunFolder::open_or_create(config.workspace, name, file, to_yaml(config)));
  } catch (const po::error&) {
    return setup_failed("serve");
  } catch (const Error&) {
    return setup_failed("serve");
  }

  const std::string name = run->path().filename().string();
  if (detach) {
    run->set_state("CREATED", "starting");
    const pid_t pid = detach_process();
    if (pid < 0) {
      std::cerr << "flow serve: cannot detach: fork failed\n";
      return kRunFailed;
    }
    if (pid > 0) return wait_for_child(*run, pid, timeout_ready_ms);
  }

  Logger logger;
  logger.set_terminal(!detach);
  logger.open_file(run->log_file().string());
  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false;
  SignalWatcher signals([&] {
    std::lock_guard<std::mutex> lock(mu);
    stop_requested = true;
    cv.notify_all();
  });
  try {
    logger.info("flow", "serving " + file + " as " + name + " (run folder " + run->path().string() + ")");
    if (compute_threads > 0) {
      if (set_compute_threads(compute_threads))
        logger.info("flow", std::to_string(compute_threads) + " compute thread(s) per request (--compute-threads)");
      else
        logger.info("flow", "compute threads as OMP_NUM_THREADS / OPENBLAS_NUM_THREADS say");
    }
    Gateway gateway(*flow, options);
    // timeout_ready bounds opening the executors (loading a model, an index).
    auto opening = std::async(std::launch::async, [&] { flow->open(run->executors_dir(), &logger); });
    if (timeout_ready_ms >= 0 && opening.wait_for(std::chrono::milliseconds(timeout_ready_ms)) != std::future_status::ready) {
      const std::string what = "the executors did not open within timeout_ready (" + std::to_string(timeout_ready_ms) + " ms)";
      run->set_state("FAILED", what);
      logger.error("flow", what);
      std::_Exit(kRunFailed);  // an open() cannot be interrupted
    }
    opening.get();
    try {
      gateway.start();
    } catch (...) {
      flow->close();
      throw;
    }
    std::string details = "endpoints on " + gateway.url();
    if (gateway.monitoring_port())
      details += "; metrics on http://" + options.host + ":" + std::to_string(gateway.monitoring_port()) + "/metrics";
    run->set_serving(gateway.url(), details);
    logger.info("flow", "serving on " + gateway.url() +
                            (gateway.monitoring_port() ? " (metrics on port " + std::to_string(gateway.monitoring_port()) + ")" : ""));
    if (!detach) std::cout << "serving " << name << " on " << gateway.url() << std::endl;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stop_requested; });
    }
    logger.info("flow", "stopping: answering the requests in flight (grace " + std::to_string(grace_ms) + " ms)");
    const bool all_answered = gateway.stop(std::chrono::milliseconds(grace_ms));
    if (!all_answered) logger.warning("flow", "the grace period ended with requests unanswered");
    flow->close();
    run->set_state("STOPPED", all_answered ? "stopped on request" : "stopped on request; some requests were cut at the grace period");
    logger.info("flow", "stopped");
    return kOk;
  } catch (const std::exception& e) {
    run->set_state("FAILED", e.what());
    logger.error("flow", std::string("serving failed: ") + e.what());
    return kRunFailed;
  }
}

}  // namespace docflow::cli
