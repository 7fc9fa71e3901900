#include "rank_launcher.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

}  // namespace docflow::cli
