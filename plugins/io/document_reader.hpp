#pragma once
// DocumentReader: the source of a batch run. Reads a document file (binary
// or JSON Lines, detected by content) or a glob of image files (one document
// per file, with `uri`), in batches, for a number of epochs, optionally
// shuffled with a seed. Without shuffle it streams: memory stays bounded by
// one batch whatever the file's size.
#include <memory>
#include <random>
#include <vector>

#include "docarray/document_file.hpp"
#include "docflow/executor.hpp"

namespace docflow::io {

class DocumentReader : public Source {
 public:
  explicit DocumentReader(ExecutorContext context);
  void open() override;
  std::optional<Item> next() override;
  std::string endpoint() const override { return endpoint_; }
  // At an epoch boundary the position is the epoch and the shuffle's generator.
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  bool next_document(docarray::Document& doc);
  void start_epoch();

  std::string path_, endpoint_;
  std::size_t batch_size_;
  int epochs_;
  bool shuffle_;
  std::int64_t limit_;
  std::mt19937_64 rng_;

  bool is_glob_ = false;
  std::vector<std::string> image_files_;
  std::vector<docarray::Document> all_;  // held only when shuffling
  std::vector<std::size_t> order_;
  std::unique_ptr<docarray::DocumentFileReader> reader_;
  std::size_t position_ = 0;
  std::int64_t emitted_in_epoch_ = 0;
  int epoch_ = 0;
  bool epoch_done_ = false, finished_ = false;
};

}  // namespace docflow::io
