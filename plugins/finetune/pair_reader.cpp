#include "docflow/error.hpp"
#include "executors.hpp"

namespace docflow::finetune {

PairReader::PairReader(ExecutorContext c)
    : Source(std::move(c)), rng_(static_cast<std::uint64_t>(params().get_int("seed"))) {}

void PairReader::open() {
  const PairSourceOptions o = pair_source_options(params(), "path");
  records_ = load_pairs(o);
  const std::int64_t limit = params().get_int("limit");
  if (limit >= 0 && static_cast<std::size_t>(limit) < records_.size()) records_.resize(static_cast<std::size_t>(limit));
  if (records_.size() < 2) throw Error(o.path + ": " + std::to_string(records_.size()) + " example(s); CLIPLoss needs at least 2");
  const auto batch = params().get_int("batch_size");
  sampler_ = EpochSampler::make(batch, group().size(), group().rank(), resolve_drop_last(params().get_string("drop_last"), endpoint()),
                                name());
  const auto batches = sampler_.batches(records_.size());
  log().info(name(), o.path + ": " + std::to_string(records_.size()) + " image-caption pairs, batch " + std::to_string(batch) +
                         ", " + std::to_string(params().get_int("epochs")) + " epoch(s)");
  // The trainer's schedulers need the run's length.
  registry().publish("training_plan", std::make_shared<TrainingPlan>(TrainingPlan{batches, params().get_int("epochs")}));
}

void PairReader::close() {
  ahead_.clear();  // waits for the workers
  if (skipped_) log().warning(name(), std::to_string(skipped_.load()) + " example(s) skipped for unreadable images");
}

void PairReader::start_epoch() {
  order_.resize(records_.size());
  for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  if (params().get_bool("shuffle")) std::shuffle(order_.begin(), order_.end(), rng_);
  order_ = sampler_.share(order_);
  launched_ = 0;
  epoch_started_ = true;
}

void PairReader::launch_batches() {
  const std::size_t batch = sampler_.local_batch();
  while (ahead_.size() < static_cast<std::size_t>(params().get_int("read_ahead")) + 1 && launched_ < order_.size()) {
    const std::size_t end = std::min(order_.size(), launched_ + batch);
    std::vector<std::size_t> ids(order_.begin() + static_cast<std::ptrdiff_t>(launched_),
                                 order_.begin() + static_cast<std::ptrdiff_t>(end));
    launched_ = end;
    ahead_.push_back(std::async(std::launch::async, [this, ids = std::move(ids)] { return make_batch(ids); }));
  }
}

std::optional<Source::Item> PairReader::next() {
  if (epoch_ >= params().get_int("epochs")) return std::nullopt;
  if (!epoch_started_) start_epoch();
  launch_batches();
  Item item;
  item.epoch = static_cast<int>(epoch_);
  if (ahead_.empty()) {
    item.kind = Item::Kind::EndOfEpoch;
    ++epoch_;
    epoch_started_ = false;
    return item;
  }
  item.docs = ahead_.front().get();  // a broken example with on_error: fail throws here, naming it
  ahead_.pop_front();
  launch_batches();
  return item;
}

// One batch, on a worker thread: only records_ (read-only) and the logger are shared.
docarray::DocumentArray PairReader::make_batch(std::vector<std::size_t> ids) const {
  const int size = static_cast<int>(params().get_int("image_size"));
  const bool skip = params().get_string("on_error") == "skip";
  docarray::DocumentArray out;
  for (std::size_t i : ids) {
    const PairRecord& r = records_[i];
    docarray::Document image = r.image, text;
    if (size > 0) {
      try {
        image.tensor = pair_image_tensor(r, size);
      } catch (const Error& e) {
        if (!skip) throw;
        log().warning(name(), std::string("skipping ") + e.what());
        ++skipped_;
        continue;
      }
    }
    text.modality = "text";
    text.text = r.caption;
    docarray::Document pair("pair-" + std::to_string(i));
    if (r.label) {
      pair.tags["label"] = *r.label;
      image.tags["label"] = *r.label;
      text.tags["label"] = *r.label;
    }
    pair.add_chunk(std::move(image));
    pair.add_chunk(std::move(text));
    out.append(std::move(pair));
  }
  return out;
}

}  // namespace docflow::finetune
