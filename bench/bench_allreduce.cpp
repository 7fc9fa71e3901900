// Allreduce between two processes on loopback through docflow's process
// group (c10d + Gloo), against the same allreduce through Python's
// torch.distributed started by this benchmark (bench/allreduce_peer.py).
// The figure is the algorithm bandwidth, bytes of the tensor / seconds per
// allreduce, as nccl-tests print it.
//
//   bench_allreduce [FLOATS] [REPEATS] [ROUNDS]   (default: 151,277,313 floats, ViT-B/32's parameters; 5 repeats; 3 rounds)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "docflow/process_group.hpp"
#include "load_generator.hpp"
#include "result_line.hpp"

namespace {

double rank_main(int rank, int port, std::int64_t floats, int repeats) {
  torch::set_num_threads(1);
  docflow::DistributedEnvironment env;
  env.rank = rank;
  env.world_size = 2;
  env.local_rank = rank;
  env.local_world_size = 2;
  env.master_port = port;
  env.timeout = std::chrono::milliseconds(600000);
  auto group = docflow::ProcessGroup::create(env);
  std::vector<torch::Tensor> t{torch::ones({floats})};
  group->allreduce(t);  // warm-up: connections, buffers
  group->barrier();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) group->allreduce(t);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
  return static_cast<double>(floats) * 4 / secs / 1e9;
}

// One round of docflow's side: this process is rank 0, a child started
// from this executable (before LibTorch starts a thread) rank 1. 0 when
// rank 1 failed.
double docflow_round(std::int64_t floats, int repeats) {
  const int port = bench::free_port();  // for the store rank 0 serves
  const pid_t other = ::fork();
  if (other == 0) {
    const std::string p = std::to_string(port), n = std::to_string(floats), r = std::to_string(repeats);
    ::execl("/proc/self/exe", "bench_allreduce", "--rank", "1", p.c_str(), n.c_str(), r.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  const double ours = rank_main(0, port, floats, repeats);
  int st = 0;
  ::waitpid(other, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ours : 0;
}

double peer_round(std::int64_t floats, int repeats) {
  const std::string cmd = std::string("/usr/bin/python3 ") + BENCH_DIR + "/allreduce_peer.py " + std::to_string(floats) + " " +
                          std::to_string(repeats);
  FILE* peer = ::popen(cmd.c_str(), "r");
  double theirs = 0;
  char line[256];
  while (peer && std::fgets(line, sizeof line, peer))
    if (std::sscanf(line, "peer GB/s %lf", &theirs) == 1) break;
  if (peer) ::pclose(peer);
  return theirs;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

// Rounds alternate (docflow, peer, docflow, ...) and each side's median is
// compared: the same c10d + Gloo runs underneath both, so a single pair of
// runs mostly measured which one the host's other load fell on (0.97 and
// 1.01 in two sessions).
int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--rank") {  // rank 1, started by docflow_round
    rank_main(1, std::stoi(argv[3]), std::stoll(argv[4]), std::stoi(argv[5]));
    return 0;
  }
  const std::int64_t floats = argc > 1 ? std::stoll(argv[1]) : 151277313;
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  const int rounds = argc > 3 ? std::max(1, std::stoi(argv[3])) : 3;
  std::printf("allreduce of %lld floats (%.0f MB) between 2 processes on 127.0.0.1, 1 thread each, %d repeats, %d rounds\n",
              static_cast<long long>(floats), static_cast<double>(floats) * 4 / 1e6, repeats, rounds);
  std::fflush(stdout);
  std::vector<double> ours, theirs;
  for (int r = 0; r < rounds; ++r) {
    ours.push_back(docflow_round(floats, repeats));
    if (ours.back() <= 0) {
      std::cerr << "bench_allreduce: rank 1 failed\n";
      return 1;
    }
    theirs.push_back(peer_round(floats, repeats));
    if (theirs.back() <= 0) {
      std::cerr << "bench_allreduce: the Python peer gave no figure (python3-torch installed?)\n";
      return 1;
    }
    std::printf("round %d: docflow %.3f GB/s, torch.distributed (Python) %.3f GB/s\n", r + 1, ours.back(), theirs.back());
    std::fflush(stdout);
  }
  const double a = median(ours), b = median(theirs);
  std::printf("median: docflow %.3f GB/s, torch.distributed %.3f GB/s\nratio docflow / peer: %.2f (goal >= 1.0)\n", a, b, a / b);
  bench::result("allreduce between 2 processes (Gloo), median of " + std::to_string(rounds) + " alternating rounds",
                bench::figure(a, "GB/s", 3), "torch.distributed " + bench::figure(b, "GB/s", 3), a / b, 1.0);
  return 0;
}
