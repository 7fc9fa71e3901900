#pragma once
// The ranks of a distributed run and the collectives between them: a small
// wrapper over torch.distributed's c10d (TCPStore + the Gloo backend), the
// engine PyTorch users already run. Every executor gets one through its
// ExecutorContext; a single-process run has world size 1 and the same API
// (every collective is then the identity), so an executor is written once.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace docflow {

// Who this process is in the run: torchrun's environment contract (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so
// torchrun, a Kubernetes PyTorchJob or a Slurm script can start `flow run`.
struct DistributedEnvironment {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  // torchrun's elastic agent already serves the store at MASTER_ADDR:PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 joins it as a client.
  bool agent_store = false;
  int restart_count = 0;  // TORCHELASTIC_RESTART_COUNT: an elastic restart's keys are its own
  // How long a collective or the store may wait for the other ranks before
  // the run fails naming what it waited for.
  std::chrono::milliseconds timeout{30000};

  bool distributed() const { return world_size > 1; }
  std::string describe() const;  // "rank 1 of 2 (local 1 of 2), store 127.0.0.1:29500"
};

// The environment this process was started with: nullopt when WORLD_SIZE is
// not set (a plain single-process run). A partial or inconsistent
// environment is an error naming the variable. DOCFLOW_DIST_TIMEOUT (seconds)
// sets the timeout.
std::optional<DistributedEnvironment> environment_from_variables();

class ProcessGroup {
 public:
  enum class Op { Sum, Average, Max };
  virtual ~ProcessGroup();

  // A collective under way (allreduce_async): wait() returns once its
  // results are in place, and throws docflow::Error as the blocking call
  // would. Dropping it unwaited is safe (c10d keeps the tensors alive) but
  // leaves the tensors' contents undefined.
  class Pending {
   public:
    virtual ~Pending();
    virtual void wait() = 0;
  };

  // Joins the run `env` describes (world size 1: no network at all). Throws
  // docflow::Error naming the store's address when it cannot be reached in
  // env.timeout.
  static std::shared_ptr<ProcessGroup> create(const DistributedEnvironment& env);
  // The world of one process.
  static std::shared_ptr<ProcessGroup> single();

  const DistributedEnvironment& environment() const { return env_; }
  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }

  // In place, on every rank: float tensors of the same shapes on every rank
  // (several travel as one flat tensor).
  void allreduce(std::vector<at::Tensor>& tensors, Op op = Op::Sum) { allreduce_async(tensors, op)->wait(); }
  // The same, started and returned at once: the tensors must be left alone
  // until wait(). Collectives pair up across the ranks in the order they
  // are started, so every rank starts them in the same order.
  virtual std::unique_ptr<Pending> allreduce_async(std::vector<at::Tensor> tensors, Op op = Op::Sum) = 0;
  // Every rank's `tensor` (the same shape on every rank), in rank order.
  virtual std::vector<at::Tensor> allgather(const at::Tensor& tensor) = 0;
  // `tensor` becomes root's, in place.
  virtual void broadcast(at::Tensor& tensor, int root = 0) = 0;
  virtual void barrier() = 0;
  // The key-value store every rank shares (small values: names, hashes).
  virtual void store_set(const std::string& key, const std::string& value) = 0;
  // Waits for the key, up to `timeout` (0: the environment's).
  virtual std::string store_get(const std::string& key, std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) = 0;

  // Another channel to the same ranks, opened alike on every rank (the n-th
  // channel of a name pairs with the n-th of that name elsewhere): its
  // collectives pair up among themselves and never with this group's, so
  // two parts of a program (the gradients' buckets started from backward,
  // the features gathered inside it) cannot cross each other's order.
  virtual std::shared_ptr<ProcessGroup> channel(const std::string& name) = 0;

  // Refuses a run whose ranks resolved different flows (another file, other
  // --set values): every rank publishes a digest of `text` and compares.
  void check_same(const std::string& what, const std::string& text);

 protected:
  explicit ProcessGroup(DistributedEnvironment env) : env_(std::move(env)) {}
  DistributedEnvironment env_;
};

}  // namespace docflow
