#pragma once
// `flow run --nproc-per-node N`: what torchrun does for a Python script.
// Starts N copies of this `flow run` on this machine with torchrun's
// environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), watches them, and when one fails gives the others the
// distributed timeout to fail by themselves (they say what they saw) before
// it kills them: no rank is left hanging.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"

namespace docflow::cli {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1, node_rank = 0;
  std::string master_addr;  // empty with one node: 127.0.0.1
  int master_port = 0;      // 0 with one node: a free port
  double timeout_s = 30;    // the collectives' and the store's timeout (DOCFLOW_DIST_TIMEOUT)
};

// How a rank ended.
struct RankExit {
  int rank = 0;
  long pid = 0;
  int code = 0;    // exit status, or -signal
  std::string describe() const;  // "rank 1 (pid 123) was killed by signal 9 (Killed)"
};

// Runs the ranks of this node: `flow run` with `run_args` in each; returns
// every rank's exit, in rank order. Throws docflow::Error on bad options.
std::vector<RankExit> launch_ranks(const LaunchOptions& options, const Args& run_args);

// A TCP port free on 127.0.0.1 right now (for the store of a one-node run).
int free_loopback_port();

// The launcher's options from torchrun's own variables, the contract of
// Kubeflow's training operator with `nprocPerNode` (v1.7 on):
// PET_NPROC_PER_NODE (a number, or auto/cpu: this machine's cores),
// PET_NNODES ("N" or "N:N"), PET_NODE_RANK, PET_MASTER_ADDR and
// PET_MASTER_PORT (else MASTER_ADDR and MASTER_PORT). nullopt when
// PET_NPROC_PER_NODE is not set, or in a worker torchrun started
// (TORCHELASTIC_RUN_ID: that process is a rank). A bad value is an error
// naming the variable.
std::optional<LaunchOptions> launch_options_from_variables();

}  // namespace docflow::cli
