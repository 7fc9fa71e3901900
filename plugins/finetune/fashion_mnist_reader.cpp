#include "executors.hpp"
#include "fashion_mnist.hpp"

namespace docflow::finetune {

FashionMnistReader::FashionMnistReader(ExecutorContext c)
    : Source(std::move(c)), rng_(static_cast<std::uint64_t>(params().get_int("seed"))) {}

  void FashionMnistReader::open() {
    data_ = load_fashion_mnist(params().get_string("path"), params().get_string("split"));
    const std::int64_t limit = params().get_int("limit");
    count_ = limit < 0 ? data_.count : std::min(limit, data_.count);
    log().info(name(), "Fashion-MNIST " + params().get_string("split") + ": " + std::to_string(count_) + " of " +
                           std::to_string(data_.count) + " examples, batch " + std::to_string(params().get_int("batch_size")) +
                           ", " + std::to_string(params().get_int("epochs")) + " epoch(s)");
    sampler_ = EpochSampler::make(params().get_int("batch_size"), group().size(), group().rank(),
                                  resolve_drop_last(params().get_string("drop_last"), endpoint()), name());
    if (group().size() > 1)
      log().info(name(), "rank " + std::to_string(group().rank()) + " of " + std::to_string(group().size()) + " reads " +
                             std::to_string(sampler_.local_batch()) + " examples of every batch");
    // The trainer's schedulers need the run's length.
    registry().publish("training_plan", std::make_shared<TrainingPlan>(
                                            TrainingPlan{sampler_.batches(static_cast<std::size_t>(count_)), params().get_int("epochs")}));
  }

  std::optional<Source::Item> FashionMnistReader::next() {
    if (epoch_ >= params().get_int("epochs")) return std::nullopt;
    if (!epoch_started_) start_epoch();
    Item item;
    item.epoch = static_cast<int>(epoch_);
    if (position_ >= order_.size()) {
      item.kind = Item::Kind::EndOfEpoch;
      ++epoch_;
      epoch_started_ = false;
      return item;
    }
    const std::size_t batch = sampler_.local_batch();
    const int size = static_cast<int>(params().get_int("image_size"));
    const bool pairs = params().get_string("documents") == "pairs";
    for (std::size_t n = 0; n < batch && position_ < order_.size(); ++n, ++position_) {
      const std::int64_t i = order_[position_];
      const int label = data_.labels[static_cast<std::size_t>(i)];
      if (!pairs) {
        item.docs.append(image_document(i, label, size));
        continue;
      }
      docarray::Document pair(params().get_string("split") + "-" + std::to_string(i));
      pair.tags["label"] = label;
      docarray::Document image, text;
      image.modality = "image";
      image.tensor = image_tensor(data_, i, size);
      image.tags["label"] = label;
      text.modality = "text";
      // Drawn from the example and the epoch alone: every rank and any
      // number of ranks give an example the same caption.
      std::seed_seq seeds{static_cast<std::uint64_t>(params().get_int("seed")), static_cast<std::uint64_t>(epoch_),
                          static_cast<std::uint64_t>(i)};
      std::mt19937_64 caption_rng(seeds);
      text.text = training_caption(label, caption_rng);
      text.tags["label"] = label;
      pair.add_chunk(std::move(image));
      pair.add_chunk(std::move(text));
      item.docs.append(std::move(pair));
    }
    return item;
  }

  // An image to index: the 28 x 28 original as a PNG blob (the thumbnail a
  // search page shows), the model's input as its tensor, the class as tags.
  docarray::Document FashionMnistReader::image_document(std::int64_t i, int label, int size) const {
    docarray::Document image(params().get_string("split") + "-" + std::to_string(i));
    image.modality = "image";
    image.mime_type = "image/png";
    image.blob = clip::encode_png(fashion_image(data_, i));
    image.tensor = image_tensor(data_, i, size);
    image.tags["label"] = label;
    image.tags["label_name"] = class_names().at(static_cast<std::size_t>(label));
    return image;
  }

  void FashionMnistReader::start_epoch() {
    order_.resize(static_cast<std::size_t>(count_));
    for (std::int64_t i = 0; i < count_; ++i) order_[static_cast<std::size_t>(i)] = i;
    if (params().get_bool("shuffle")) std::shuffle(order_.begin(), order_.end(), rng_);
    order_ = sampler_.share(order_);
    position_ = 0;
    epoch_started_ = true;
  }

}  // namespace docflow::finetune

