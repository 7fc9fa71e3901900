// Allreduce between two processes on loopback through docflow's process
// group (c10d + Gloo), against the same allreduce through Python's
// torch.distributed started by this benchmark (bench/allreduce_peer.py).
// The figure is the algorithm bandwidth, bytes of the tensor / seconds per
// allreduce, as nccl-tests print it.
//
//   bench_allreduce [FLOATS] [REPEATS]   (default: 151,277,313 floats, ViT-B/32's parameters; 5 repeats)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

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

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--rank") {  // rank 1, started below
    rank_main(1, std::stoi(argv[3]), std::stoll(argv[4]), std::stoi(argv[5]));
    return 0;
  }
  const std::int64_t floats = argc > 1 ? std::stoll(argv[1]) : 151277313;
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  const int port = bench::free_port();  // for the store rank 0 serves
  std::printf("allreduce of %lld floats (%.0f MB) between 2 processes on 127.0.0.1, 1 thread each, %d repeats\n",
              static_cast<long long>(floats), static_cast<double>(floats) * 4 / 1e6, repeats);
  std::fflush(stdout);
  const pid_t other = ::fork();  // before LibTorch starts any thread
  if (other == 0) {
    const std::string p = std::to_string(port), n = std::to_string(floats), r = std::to_string(repeats);
    ::execl("/proc/self/exe", "bench_allreduce", "--rank", "1", p.c_str(), n.c_str(), r.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  const double ours = rank_main(0, port, floats, repeats);
  int st = 0;
  ::waitpid(other, &st, 0);
  if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
    std::cerr << "bench_allreduce: rank 1 failed\n";
    return 1;
  }
  std::printf("docflow   %.3f GB/s\n", ours);
  std::fflush(stdout);
  const std::string cmd = std::string("/usr/bin/python3 ") + BENCH_DIR + "/allreduce_peer.py " + std::to_string(floats) + " " +
                          std::to_string(repeats);
  FILE* peer = ::popen(cmd.c_str(), "r");
  double theirs = 0;
  char line[256];
  while (peer && std::fgets(line, sizeof line, peer))
    if (std::sscanf(line, "peer GB/s %lf", &theirs) == 1) break;
  if (peer) ::pclose(peer);
  if (theirs <= 0) {
    std::cerr << "bench_allreduce: the Python peer gave no figure (python3-torch installed? " << cmd << ")\n";
    return 1;
  }
  std::printf("torch.distributed (Python) %.3f GB/s\nratio docflow / peer: %.2f (goal >= 1.0)\n", theirs, ours / theirs);
  bench::result("allreduce between 2 processes (Gloo)", bench::figure(ours, "GB/s", 3),
                "torch.distributed " + bench::figure(theirs, "GB/s", 3), ours / theirs, 1.0);
  return 0;
}
