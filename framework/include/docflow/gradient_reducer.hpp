#pragma once
// Averages the parameters' gradients over a run's ranks while backward is
// still running, as PyTorch's DistributedDataParallel does: each
// parameter's gradient accumulator gets a hook, and a bucket of gradients
// starts its allreduce on Gloo's threads as soon as its last gradient is
// in, so the communication of the last layers overlaps the backward of the
// first. Buckets start strictly in their own order, whatever order backward
// finishes the gradients in, so every rank pairs the same collectives.
//
//   GradientReducer reducer(group, parameters);
//   reducer.prepare();      // the next backward's gradients are averaged
//   loss.backward();
//   reducer.finish();       // every gradient now holds the ranks' mean
//
// A world of one process does nothing (no hooks, no copies).
#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "docflow/process_group.hpp"

namespace docflow {

class GradientReducer {
 public:
  struct Parameter {
    at::Tensor tensor;  // a leaf that requires grad
    // An embedding table: a batch touches few of its rows, so only the rows
    // some rank's gradient touched travel (their union, agreed first). The
    // result is the dense allreduce's exactly: the other rows are zero on
    // every rank.
    bool sparse_rows = false;
  };
  struct Options {
    // Small gradients travel together, flattened into one bucket of up to
    // this many floats (16 MB, DDP's default is 25 MB).
    std::int64_t bucket_floats = std::int64_t{4} << 20;
    // A gradient this large travels alone and in place: packing it would
    // only copy it twice (ViT-B/32's 151M floats between two processes:
    // 0.83 s one by one against 0.95-1.0 s in 16 MB buckets).
    std::int64_t alone_floats = std::int64_t{1} << 20;
  };

  // `parameters` in the order the model registers them (forward order):
  // buckets take them backwards, the order backward produces gradients.
  // Every rank passes the same list. The buckets' collectives go over a
  // channel of their own (ProcessGroup::channel), so collectives inside
  // backward (a gather's backward) cannot interleave with them differently
  // on different ranks.
  GradientReducer(ProcessGroup& group, std::vector<Parameter> parameters);
  GradientReducer(ProcessGroup& group, std::vector<Parameter> parameters, Options options);
  ~GradientReducer();  // takes its hooks off the accumulators
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // The next backward's gradients are the ones to average (with gradient
  // accumulation: the last micro-batch's backward).
  void prepare();
  // After that backward: starts the buckets backward did not complete (a
  // parameter the batch did not reach gets a zero gradient), waits for all
  // and leaves every gradient averaged over the ranks. Without prepare(),
  // averages synchronously. Returns the seconds it waited: the part of the
  // communication backward did not hide.
  double finish();

  // How many buckets started during the last backward, of how many (for
  // tests and the trainer's log).
  int started_in_backward() const;
  int buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace docflow
