// GradientReducer: buckets of gradients started from the accumulators'
// post hooks (DistributedDataParallel's Reducer, reduced to what a CPU
// data-parallel trainer needs: no find_unused_parameters, no
// gradient-as-bucket-view, no rebuilding of buckets).
#include "docflow/gradient_reducer.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <ATen/ATen.h>

#include <chrono>
#include <mutex>

#include "docflow/error.hpp"

namespace docflow {

struct GradientReducer::Impl {
  struct Bucket {
    std::vector<std::size_t> members;  // indices into params
    std::size_t missing = 0;           // gradients not in yet this backward
    std::unique_ptr<ProcessGroup::Pending> pending;
  };

  // Called by the engine right after it accumulated the parameter's gradient.
  struct ReadyHook final : torch::autograd::FunctionPostHook {
    ReadyHook(Impl* impl, std::size_t index) : impl(impl), index(index) {}
    torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                              const torch::autograd::variable_list&) override {
      impl->ready(index);
      return outputs;
    }
    Impl* impl;
    std::size_t index;
  };

  std::shared_ptr<ProcessGroup> channel;
  std::vector<Parameter> params;
  std::vector<int> bucket_of;  // -1: sparse rows, reduced at finish
  std::vector<bool> in;        // this backward's gradient is accumulated
  std::vector<Bucket> buckets;
  std::size_t next = 0;  // the next bucket to start: they start in order
  bool armed = false;
  int started_in_backward = 0;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, std::uintptr_t>> hooks;
  std::mutex mutex;

  void ready(std::size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || in[index] || bucket_of[index] < 0) return;
    in[index] = true;
    --buckets[static_cast<std::size_t>(bucket_of[index])].missing;
    while (next < buckets.size() && buckets[next].missing == 0) {
      start(buckets[next++]);
      ++started_in_backward;
    }
  }

  at::Tensor& gradient(std::size_t index) {
    at::Tensor& p = params[index].tensor;
    // A parameter the batch did not reach has no gradient on any rank (the
    // same graph everywhere): zeros keep the buckets aligned.
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    return p.mutable_grad();
  }

  void start(Bucket& b) {
    std::vector<at::Tensor> grads;
    for (std::size_t i : b.members) grads.push_back(gradient(i));
    b.pending = channel->allreduce_async(std::move(grads), ProcessGroup::Op::Average);
  }

  // The rows any rank touched, then those rows alone.
  void reduce_rows(std::size_t index) {
    at::Tensor& g = gradient(index);
    const at::Tensor flat = g.reshape({g.size(0), -1});
    std::vector<at::Tensor> touched{flat.ne(0).any(1).to(at::kFloat)};
    channel->allreduce(touched, ProcessGroup::Op::Max);
    const at::Tensor rows = touched[0].nonzero().reshape({-1});
    if (rows.numel() == 0) return;
    std::vector<at::Tensor> part{flat.index_select(0, rows)};
    channel->allreduce(part, ProcessGroup::Op::Average);
    flat.index_copy_(0, rows, part[0]);
    if (flat.data_ptr() != g.data_ptr()) g.copy_(flat.view_as(g));  // reshape copied a non-contiguous gradient
  }

  void reset() {
    for (auto& b : buckets) {
      b.missing = b.members.size();
      b.pending.reset();
    }
    std::fill(in.begin(), in.end(), false);
    next = 0;
    armed = false;
  }
};

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<Parameter> parameters)
    : GradientReducer(group, std::move(parameters), Options{}) {}

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<Parameter> parameters, Options options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.params = std::move(parameters);
  for (std::size_t k = 0; k < m.params.size(); ++k) {  // checked alike in a world of one process
    const at::Tensor& p = m.params[k].tensor;
    if (!p.defined() || !p.requires_grad() || !p.is_leaf())
      throw Error("GradientReducer: parameter " + std::to_string(k) + " is not a leaf that requires grad");
    if (m.params[k].sparse_rows && p.dim() < 2)
      throw Error("GradientReducer: parameter " + std::to_string(k) + " has sparse rows but no rows (" + std::to_string(p.dim()) +
                  " dimension)");
  }
  if (group.size() == 1) return;
  m.channel = group.channel("gradients");
  m.bucket_of.assign(m.params.size(), -1);
  m.in.assign(m.params.size(), false);
  std::int64_t filled = 0;
  bool last_alone = false;
  for (std::size_t k = m.params.size(); k-- > 0;) {
    const at::Tensor& p = m.params[k].tensor;
    if (m.params[k].sparse_rows) continue;
    // A large gradient has a bucket of its own; small ones fill one up.
    const bool alone = p.numel() >= options.alone_floats;
    if (alone || last_alone || m.buckets.empty() || filled >= options.bucket_floats) {
      m.buckets.emplace_back();
      filled = 0;
    }
    m.buckets.back().members.push_back(k);
    m.bucket_of[k] = static_cast<int>(m.buckets.size() - 1);
    filled += p.numel();
    last_alone = alone;
  }
  for (std::size_t k = 0; k < m.params.size(); ++k) {
    if (m.bucket_of[k] < 0) continue;
    // The accumulator lives as long as we hold it: a parameter keeps only a
    // weak reference, and a new one (without the hook) would come with the
    // next forward.
    std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(m.params[k].tensor);
    const std::uintptr_t key = acc->add_post_hook(std::make_unique<Impl::ReadyHook>(&m, k));
    m.hooks.emplace_back(std::move(acc), key);
  }
  m.reset();
}

GradientReducer::~GradientReducer() {
  for (auto& [acc, key] : impl_->hooks) acc->del_post_hook(key);
}

void GradientReducer::prepare() {
  Impl& m = *impl_;
  if (!m.channel) return;
  std::lock_guard<std::mutex> lock(m.mutex);
  m.reset();
  m.armed = true;
  m.started_in_backward = 0;
}

double GradientReducer::finish() {
  Impl& m = *impl_;
  if (!m.channel) return 0;
  const auto t0 = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (!m.armed) m.started_in_backward = 0;
  m.armed = false;
  try {
    while (m.next < m.buckets.size()) m.start(m.buckets[m.next++]);
    for (std::size_t k = 0; k < m.params.size(); ++k)
      if (m.bucket_of[k] < 0) m.reduce_rows(k);
    for (auto& b : m.buckets) b.pending->wait();
  } catch (...) {
    m.reset();
    throw;
  }
  m.reset();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int GradientReducer::started_in_backward() const { return impl_->started_in_backward; }
int GradientReducer::buckets() const { return static_cast<int>(impl_->buckets.size()); }

}  // namespace docflow
