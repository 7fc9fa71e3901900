#pragma once
// ClipImagePreprocessor (uri or blob -> `tensor`, float [3, S, S]) and
// ClipTokenizer (text -> `tensor`, int64 [77]) for the documents at a
// traversal path with a modality.
#include <memory>
#include <random>
#include <set>

#include "clip/tokenizer.hpp"
#include "docflow/executor.hpp"

namespace docflow::clip_plugin {

class ClipImagePreprocessor : public Executor {
 public:
  explicit ClipImagePreprocessor(ExecutorContext context);
  void close() override;

 private:
  void preprocess(Request& request);
  std::mt19937_64 rng_;
  std::size_t skipped_ = 0;
};

class ClipTokenizer : public Executor {
 public:
  explicit ClipTokenizer(ExecutorContext context);
  void open() override;

 private:
  void tokenize(Request& request);
  std::unique_ptr<clip::Tokenizer> tokenizer_;
};

// Removes from `docs` every top-level document that is, or contains, one of `ids`.
void drop_documents_containing(docarray::DocumentArray& docs, const std::set<std::string>& ids);

}  // namespace docflow::clip_plugin
