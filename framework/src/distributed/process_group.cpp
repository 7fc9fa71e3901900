// ProcessGroup over c10d: a TCPStore for rendezvous (rank 0 serves it, as
// torch.distributed's env:// init does) and ProcessGroupGloo for the
// collectives. Every c10d failure becomes a docflow::Error that says which
// collective, on which rank, and what the other side did.
#include "docflow/process_group.hpp"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <functional>
#include <sstream>

#include "docflow/error.hpp"

namespace docflow {

ProcessGroup::~ProcessGroup() = default;
ProcessGroup::Pending::~Pending() = default;

std::string DistributedEnvironment::describe() const {
  std::ostringstream s;
  s << "rank " << rank << " of " << world_size << " (local " << local_rank << " of " << local_world_size << "), store "
    << master_addr << ":" << master_port;
  return s.str();
}

namespace {

struct Done final : ProcessGroup::Pending {
  void wait() override {}
};

// c10d's messages carry a stack trace after the first line.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Runs a c10d call; its failure becomes an Error naming the rank and what
// it waited for. `timeout`: the one the call waited with, when not the
// environment's.
void run(const DistributedEnvironment& env, const std::string& what, const std::function<void()>& f,
         std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
  try {
    f();
  } catch (const std::exception& e) {
    const auto waited = timeout.count() > 0 ? timeout : env.timeout;
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": " + what +
                " failed (another rank died, stopped or took longer than the " + std::to_string(waited.count() / 1000) +
                " s timeout): " + first_line(e.what()));
  }
}

// World size 1: every collective is the identity.
class SingleProcessGroup final : public ProcessGroup {
 public:
  SingleProcessGroup() : ProcessGroup(DistributedEnvironment{}) {}
  std::unique_ptr<Pending> allreduce_async(std::vector<at::Tensor>, Op) override { return std::make_unique<Done>(); }
  std::shared_ptr<ProcessGroup> channel(const std::string&) override { return std::make_shared<SingleProcessGroup>(); }
  std::vector<at::Tensor> allgather(const at::Tensor& tensor) override { return {tensor.clone()}; }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
  void store_set(const std::string& key, const std::string& value) override { values_[key] = value; }
  std::string store_get(const std::string& key, std::chrono::milliseconds) override {
    auto it = values_.find(key);
    if (it == values_.end()) throw Error("the store has no key '" + key + "'");
    return it->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

std::shared_ptr<::gloo::transport::Device> gloo_device(const DistributedEnvironment& env) {
  if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME"); iface && *iface)
    return c10d::ProcessGroupGloo::createDeviceForInterface(iface);
  // All ranks on this machine talk over loopback; across machines, over the
  // address this machine's hostname resolves to (as torch.distributed does).
  if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// An allreduce started on Gloo's threads: wait() finishes what the
// blocking call did after them (the copy back into a non-contiguous
// tensor, the average, the pieces of a flat bucket).
class GlooPending final : public ProcessGroup::Pending {
 public:
  GlooPending(const DistributedEnvironment& env, ProcessGroup::Op op, std::vector<at::Tensor> tensors, at::Tensor flat,
              at::Tensor dense, std::vector<c10::intrusive_ptr<c10d::Work>> works)
      : env_(env), op_(op), tensors_(std::move(tensors)), flat_(std::move(flat)), dense_(std::move(dense)), works_(std::move(works)) {}

  void wait() override {
    if (works_.empty()) return;
    run(env_, "allreduce", [&] {
      for (auto& w : works_) w->wait();
    });
    works_.clear();
    // Gloo wrote through the pointer: count the change as an in-place op does.
    dense_.unsafeGetTensorImpl()->bump_version();
    if (!dense_.is_same(flat_)) flat_.copy_(dense_);
    if (op_ == ProcessGroup::Op::Average) flat_.div_(env_.world_size);
    if (tensors_.size() == 1) return;
    std::int64_t at = 0;
    for (auto& t : tensors_) {
      t.copy_(flat_.narrow(0, at, t.numel()).view_as(t));
      at += t.numel();
    }
  }

 private:
  DistributedEnvironment env_;
  ProcessGroup::Op op_;
  std::vector<at::Tensor> tensors_;
  at::Tensor flat_, dense_;
  std::vector<c10::intrusive_ptr<c10d::Work>> works_;
};

class GlooProcessGroup final : public ProcessGroup {
  static constexpr std::int64_t kSplitAbove = std::int64_t{1} << 18;  // floats (1 MB)
  static constexpr std::int64_t kParts = 2;

 public:
  explicit GlooProcessGroup(const DistributedEnvironment& env) : ProcessGroup(env) {
    const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
    try {
      c10d::TCPStoreOptions o;
      o.port = static_cast<std::uint16_t>(env.master_port);
      o.isServer = env.rank == 0 && !env.agent_store;
      o.numWorkers = env.agent_store ? c10::nullopt : c10::optional<std::size_t>(static_cast<std::size_t>(env.world_size));
      o.waitWorkers = false;  // the process group's own rendezvous waits for every rank
      o.timeout = env.timeout;
      tcp_store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    } catch (const std::exception& e) {
      throw Error(std::string(env.rank == 0 && !env.agent_store ? "cannot serve" : "cannot reach") + " the run's store at " +
                  where + " (" + env.describe() + ") within " + std::to_string(env.timeout.count() / 1000) + " s: " + first_line(e.what()));
    }
    // An agent's store outlives a restart of the workers: each attempt
    // keys its rendezvous apart, as torch.distributed does.
    prefix_ = env.agent_store ? "/worker/attempt_" + std::to_string(env.restart_count) + "/docflow" : "docflow";
    connect();
  }

  // A channel: the same store under a prefix of its own, Gloo pairs of its own.
  GlooProcessGroup(const DistributedEnvironment& env, c10::intrusive_ptr<c10d::TCPStore> tcp_store, std::string prefix)
      : ProcessGroup(env), tcp_store_(std::move(tcp_store)), prefix_(std::move(prefix)) {
    connect();
  }

  // The n-th channel of a name here pairs with the n-th of that name on
  // every other rank: two reducers (two trainers) never share store keys.
  std::shared_ptr<ProcessGroup> channel(const std::string& name) override {
    const int n = channels_[name]++;
    return std::make_shared<GlooProcessGroup>(env_, tcp_store_, prefix_ + "/channel/" + name + "/" + std::to_string(n));
  }

  std::unique_ptr<Pending> allreduce_async(std::vector<at::Tensor> tensors, Op op) override {
    if (tensors.empty()) return std::make_unique<Done>();
    c10d::AllreduceOptions o;
    o.reduceOp = op == Op::Max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;  // Gloo has no AVG
    // c10d's list is one tensor per device; several tensors go as one flat one.
    at::Tensor flat = tensors.size() == 1 ? tensors[0] : at::cat(flatten(tensors));
    at::Tensor dense = flat;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    run(env_, "allreduce", [&] {
      const std::int64_t n = flat.numel();
      if (n < kSplitAbove) {
        std::vector<at::Tensor> one{flat};
        works.push_back(group_->allreduce(one, o));
        return;
      }
      // A tensor over 1 MB goes in kParts parts at once, on Gloo's two
      // threads: one part's reduction overlaps the other's transfer
      // (bench_allreduce against torch.distributed, medians of three
      // rounds: 605 MB 1.03 -> 1.18x, 9.4 MB 1.02 -> 1.22x, 2.4 MB 1.04 ->
      // 1.19x; four parts gave the same as two). Every rank splits alike:
      // the decision is the size's.
      dense = flat.contiguous();
      const at::Tensor whole = dense.view(-1);
      for (std::int64_t k = 0; k < kParts; ++k) {
        const std::int64_t lo = n * k / kParts, hi = n * (k + 1) / kParts;
        std::vector<at::Tensor> part{whole.narrow(0, lo, hi - lo)};
        works.push_back(group_->allreduce(part, o));
      }
    });
    return std::make_unique<GlooPending>(env_, op, std::move(tensors), std::move(flat), std::move(dense), std::move(works));
  }

  std::vector<at::Tensor> allgather(const at::Tensor& tensor) override {
    std::vector<at::Tensor> input{tensor.contiguous()};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < env_.world_size; ++r) output[0].push_back(at::empty_like(input[0]));
    run(env_, "allgather", [&] { group_->allgather(output, input)->wait(); });
    return output[0];
  }

  void broadcast(at::Tensor& tensor, int root) override {
    std::vector<at::Tensor> t{tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    run(env_, "broadcast", [&] { group_->broadcast(t, o)->wait(); });
    // Gloo wrote through the pointer: count the change as an in-place op does
    // (kernels key their copies of a weight by this counter).
    tensor.unsafeGetTensorImpl()->bump_version();
  }

  void barrier() override {
    run(env_, "barrier", [&] { group_->barrier()->wait(); });
  }

  void store_set(const std::string& key, const std::string& value) override {
    run(env_, "store set '" + key + "'", [&] { store_->set(key, std::vector<std::uint8_t>(value.begin(), value.end())); });
  }

  std::string store_get(const std::string& key, std::chrono::milliseconds timeout) override {
    std::vector<std::uint8_t> v;
    run(
        env_, "store get '" + key + "'",
        [&] {
          if (timeout.count() > 0) store_->wait({key}, timeout);
          v = store_->get(key);
        },
        timeout);
    return std::string(v.begin(), v.end());
  }

 private:
  static std::vector<at::Tensor> flatten(const std::vector<at::Tensor>& tensors) {
    std::vector<at::Tensor> out;
    for (const auto& t : tensors) out.push_back(t.reshape({-1}));
    return out;
  }

  void connect() {
    store_ = c10::make_intrusive<c10d::PrefixStore>(prefix_, tcp_store_);
    try {
      auto options = c10d::ProcessGroupGloo::Options::create(env_.timeout);
      options->devices.push_back(gloo_device(env_));
      options->threads = 2;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env_.rank, env_.world_size, options);
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(env_.rank) + " could not connect to the other " + std::to_string(env_.world_size - 1) +
                  " rank(s) through the store at " + env_.master_addr + ":" + std::to_string(env_.master_port) + " within " +
                  std::to_string(env_.timeout.count() / 1000) + " s (a rank that did not start, or a firewall?): " + first_line(e.what()));
    }
  }

  c10::intrusive_ptr<c10d::TCPStore> tcp_store_;
  std::string prefix_;
  std::map<std::string, int> channels_;  // channels opened, by name
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

int int_variable(const char* name, int min) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw Error(std::string("the distributed environment lacks ") + name + " (set with WORLD_SIZE)");
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (errno || *end || n < min || n > 65535)
    throw Error(std::string(name) + "='" + v + "' is not a whole number from " + std::to_string(min) + " to 65535");
  return static_cast<int>(n);
}

}  // namespace

std::shared_ptr<ProcessGroup> ProcessGroup::single() { return std::make_shared<SingleProcessGroup>(); }

std::shared_ptr<ProcessGroup> ProcessGroup::create(const DistributedEnvironment& env) {
  if (!env.distributed()) return single();
  return std::make_shared<GlooProcessGroup>(env);
}

std::optional<DistributedEnvironment> environment_from_variables() {
  const char* world = std::getenv("WORLD_SIZE");
  if (!world || !*world) return std::nullopt;
  DistributedEnvironment env;
  env.world_size = int_variable("WORLD_SIZE", 1);
  env.rank = int_variable("RANK", 0);
  if (env.rank >= env.world_size)
    throw Error("RANK=" + std::to_string(env.rank) + " is not below WORLD_SIZE=" + std::to_string(env.world_size));
  const char* local = std::getenv("LOCAL_RANK");
  env.local_rank = local && *local ? int_variable("LOCAL_RANK", 0) : 0;
  const char* local_world = std::getenv("LOCAL_WORLD_SIZE");
  env.local_world_size = local_world && *local_world ? int_variable("LOCAL_WORLD_SIZE", 1) : 1;
  if (env.local_rank >= env.local_world_size)
    throw Error("LOCAL_RANK=" + std::to_string(env.local_rank) + " is not below LOCAL_WORLD_SIZE=" +
                std::to_string(env.local_world_size));
  if (env.world_size > 1) {
    const char* addr = std::getenv("MASTER_ADDR");
    if (!addr || !*addr) throw Error("the distributed environment lacks MASTER_ADDR (set with WORLD_SIZE=" + std::to_string(env.world_size) + ")");
    env.master_addr = addr;
    env.master_port = int_variable("MASTER_PORT", 1);
  }
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent && std::string(agent) == "True";
  if (const char* restarts = std::getenv("TORCHELASTIC_RESTART_COUNT"); restarts && *restarts)
    env.restart_count = int_variable("TORCHELASTIC_RESTART_COUNT", 0);
  if (const char* t = std::getenv("DOCFLOW_DIST_TIMEOUT"); t && *t) {
    char* end = nullptr;
    const double secs = std::strtod(t, &end);
    if (*end || !(secs > 0) || secs > 86400) throw Error(std::string("DOCFLOW_DIST_TIMEOUT='") + t + "' is not a number of seconds in (0, 86400]");
    env.timeout = std::chrono::milliseconds(static_cast<long long>(secs * 1000));
  }
  return env;
}

void ProcessGroup::check_same(const std::string& what, const std::string& text) {
  if (size() == 1) return;
  const std::string digest = std::to_string(std::hash<std::string>{}(text));
  store_set("check/" + what + "/" + std::to_string(rank()), digest);
  for (int r = 0; r < size(); ++r) {
    if (r == rank()) continue;
    const std::string theirs = store_get("check/" + what + "/" + std::to_string(r));
    if (theirs != digest)
      throw Error("rank " + std::to_string(r) + "'s " + what + " differs from rank " + std::to_string(rank()) +
                  "'s: every rank must run the same flow file with the same --set values");
  }
}

}  // namespace docflow
