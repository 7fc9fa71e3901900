#include "epoch_sampler.hpp"

#include "docflow/error.hpp"

namespace docflow::finetune {

EpochSampler EpochSampler::make(std::int64_t global_batch, int world, int rank, bool drop_last, const std::string& executor) {
  if (global_batch % world != 0)
    throw Error(executor + ": batch_size " + std::to_string(global_batch) + " does not split evenly over " + std::to_string(world) +
                " ranks; batch_size is the global batch (every rank takes batch_size / world size), so make it a multiple of " +
                std::to_string(world));
  if (world > 1 && !drop_last)
    throw Error(executor + ": drop_last: false with " + std::to_string(world) +
                " ranks; every rank needs the same number of equal batches (Gloo gathers features of one shape), so the "
                "incomplete last batch is dropped: set drop_last to true or auto");
  return EpochSampler{static_cast<std::size_t>(global_batch), world, rank, drop_last};
}

std::int64_t EpochSampler::batches(std::size_t count) const {
  return static_cast<std::int64_t>(drop_last ? count / global_batch : (count + global_batch - 1) / global_batch);
}

bool resolve_drop_last(const std::string& setting, const std::string& endpoint) {
  if (setting == "auto") return endpoint == "/train";
  return setting == "true";
}

}  // namespace docflow::finetune
