#pragma once
// Which examples a rank reads in an epoch: PyTorch's DistributedSampler
// with whole global batches. Every rank draws the same permutation (the
// reader's generator, seeded alike), rank r takes every world-th example
// from position r, and its batches hold batch_size / world of them, so
// global batch k is positions [k*B, (k+1)*B) of the permutation on any
// number of ranks: the same flow file trains the same way on 1 or N
// processes (and a run resumes on another number of them).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace docflow::finetune {

struct EpochSampler {
  std::size_t global_batch = 1;
  int world = 1, rank = 0;
  bool drop_last = true;  // drop an incomplete last global batch

  // Throws naming both numbers when the batch does not split evenly over the ranks.
  static EpochSampler make(std::int64_t global_batch, int world, int rank, bool drop_last, const std::string& executor);
  std::size_t local_batch() const { return global_batch / static_cast<std::size_t>(world); }
  // Global batches in an epoch of `count` examples.
  std::int64_t batches(std::size_t count) const;
  // This rank's share of the epoch's permutation `order`, in batch order.
  template <class T>
  std::vector<T> share(const std::vector<T>& order) const {
    const std::size_t usable = drop_last ? order.size() / global_batch * global_batch : order.size();
    std::vector<T> out;
    out.reserve(usable / static_cast<std::size_t>(world) + 1);
    for (std::size_t i = static_cast<std::size_t>(rank); i < usable; i += static_cast<std::size_t>(world)) out.push_back(order[i]);
    return out;
  }
};

// drop_last: auto drops for training requests (CLIPLoss with fewer
// negatives shows as a dip at every epoch's end) and keeps every document
// of any other stream (an index).
bool resolve_drop_last(const std::string& setting, const std::string& endpoint);

}  // namespace docflow::finetune
