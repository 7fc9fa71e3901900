#include "rank_launcher.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "docflow/error.hpp"

namespace docflow::cli {

std::string RankExit::describe() const {
  const std::string who = "rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ")";
  if (code >= 0) return who + " exited with status " + std::to_string(code);
  return who + " was killed by signal " + std::to_string(-code) + " (" + strsignal(-code) + ")";
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free port for the run's store");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error("cannot find a free port on 127.0.0.1 for the run's store");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

namespace {

[[noreturn]] void exec_rank(const LaunchOptions& o, int local_rank, const Args& run_args) {
  const int world = o.nnodes * o.nproc_per_node;
  ::setenv("RANK", std::to_string(o.node_rank * o.nproc_per_node + local_rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node).c_str(), 1);
  ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
  ::setenv("DOCFLOW_DIST_TIMEOUT", std::to_string(o.timeout_s).c_str(), 1);
  ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");  // this launcher serves no store: rank 0 does
  // A rank is no launcher: the training operator's launcher variables stop here.
  for (const char* v : {"PET_NPROC_PER_NODE", "PET_NNODES", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"}) ::unsetenv(v);
  std::vector<std::string> argv{"flow", "run"};
  argv.insert(argv.end(), run_args.begin(), run_args.end());
  std::vector<char*> c;
  for (auto& a : argv) c.push_back(a.data());
  c.push_back(nullptr);
  ::execv("/proc/self/exe", c.data());
  std::fprintf(stderr, "flow run: cannot start rank %d: %s\n", local_rank, std::strerror(errno));
  std::_Exit(127);
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status); }

// A SIGTERM to the launcher (kill, a scheduler's stop) is passed on to the
// ranks, which stop as they would on their own, instead of leaving them
// running without it.
volatile sig_atomic_t terminate_requested = 0;
void on_terminate(int) { terminate_requested = 1; }

}  // namespace

std::vector<RankExit> launch_ranks(const LaunchOptions& given, const Args& run_args) {
  LaunchOptions o = given;
  if (o.nproc_per_node < 1) throw Error("--nproc-per-node must be at least 1");
  if (o.nnodes < 1) throw Error("--nnodes must be at least 1");
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw Error("--node-rank " + std::to_string(o.node_rank) + " is not below --nnodes " + std::to_string(o.nnodes));
  if (o.nnodes > 1 && (o.master_addr.empty() || o.master_port <= 0))
    throw Error("a run over " + std::to_string(o.nnodes) + " nodes needs --master-addr and --master-port (node 0's address and a free port on it)");
  if (o.master_addr.empty()) o.master_addr = "127.0.0.1";
  if (o.master_port <= 0) o.master_port = free_loopback_port();
  if (o.master_port > 65535) throw Error("--master-port " + std::to_string(o.master_port) + " is not a port");

  std::map<pid_t, int> running;  // pid -> local rank
  std::vector<RankExit> exits(static_cast<std::size_t>(o.nproc_per_node));
  for (int r = 0; r < o.nproc_per_node; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (auto& [p, _] : running) ::kill(p, SIGKILL);
      throw Error("cannot start rank " + std::to_string(r) + ": fork failed");
    }
    if (pid == 0) exec_rank(o, r, run_args);
    running[pid] = r;
    exits[static_cast<std::size_t>(r)] = RankExit{o.node_rank * o.nproc_per_node + r, pid, 0};
  }
  std::string pids;
  for (const auto& e : exits) pids += (pids.empty() ? "" : ", ") + std::to_string(e.pid);
  std::cerr << "flow run: ranks " << o.node_rank * o.nproc_per_node << "-" << (o.node_rank + 1) * o.nproc_per_node - 1 << " of "
            << o.nnodes * o.nproc_per_node << " started (pids " << pids << "), store " << o.master_addr << ":" << o.master_port << "\n";
  // Ctrl-C reaches every rank through the terminal's process group; the
  // launcher itself waits for them to stop.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, on_terminate);
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;
  bool terminated = false;
  while (!running.empty()) {
    if (terminate_requested && !terminated) {
      terminated = true;
      for (auto& [p, _] : running) ::kill(p, SIGTERM);
      if (!kill_at) kill_at = Clock::now() + std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000) + 10000);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      auto& e = exits[static_cast<std::size_t>(running[pid])];
      e.code = exit_code(status);
      running.erase(pid);
      // The others get the timeout (plus a margin to write their status) to
      // notice and say what they saw.
      if (e.code != 0 && !kill_at)
        kill_at = Clock::now() + std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000) + 10000);
      continue;
    }
    if (kill_at && Clock::now() > *kill_at) {
      for (auto& [p, _] : running) ::kill(p, SIGKILL);
      kill_at = Clock::now() + std::chrono::hours(1);  // reap them now
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  return exits;
}

namespace {

std::optional<std::string> variable(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int whole_number(const char* name, const std::string& v, int min) {
  std::size_t used = 0;
  int n = -1;
  try {
    n = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || n < min || n > 65535)
    throw Error(std::string(name) + "='" + v + "' is not a whole number from " + std::to_string(min) + " to 65535");
  return n;
}

}  // namespace

std::optional<LaunchOptions> launch_options_from_variables() {
  const std::optional<std::string> nproc = variable("PET_NPROC_PER_NODE");
  if (!nproc || variable("TORCHELASTIC_RUN_ID")) return std::nullopt;
  LaunchOptions o;
  if (*nproc == "auto" || *nproc == "cpu")
    o.nproc_per_node = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  else if (*nproc == "gpu")
    throw Error("PET_NPROC_PER_NODE=gpu: docflow trains on CPUs; give a number of processes");
  else
    o.nproc_per_node = whole_number("PET_NPROC_PER_NODE", *nproc, 1);
  if (const auto nnodes = variable("PET_NNODES")) {
    // torchrun's elastic form MIN:MAX; docflow's runs have a fixed size.
    const auto colon = nnodes->find(':');
    o.nnodes = whole_number("PET_NNODES", nnodes->substr(0, colon), 1);
    if (colon != std::string::npos && whole_number("PET_NNODES", nnodes->substr(colon + 1), 1) != o.nnodes)
      throw Error("PET_NNODES='" + *nnodes + "' asks for an elastic run; docflow's runs have a fixed number of nodes (N or N:N)");
  }
  if (const auto rank = variable("PET_NODE_RANK")) o.node_rank = whole_number("PET_NODE_RANK", *rank, 0);
  std::optional<std::string> addr = variable("PET_MASTER_ADDR");
  if (!addr) addr = variable("MASTER_ADDR");
  if (addr) o.master_addr = *addr;
  const char* port_name = variable("PET_MASTER_PORT") ? "PET_MASTER_PORT" : "MASTER_PORT";
  if (const auto port = variable(port_name)) o.master_port = whole_number(port_name, *port, 1);
  return o;
}

}  // namespace docflow::cli
