#pragma once
// SimpleIndexer, the name Jina users know: keeps documents with embeddings
// and matches queries against them with docarray::match.
//
//   /index   adds the documents at `traversal_path` (they need embeddings)
//   /search  matches the documents at `query_traversal_path` (metric, limit)
//   /update  replaces documents by id
//   /delete  removes by `parameters.ids`, or the documents sent
//   /clear   removes everything
//
// `metric`, `limit`, `traversal_path`, `query_traversal_path` and
// `match_exclude_fields` can be set per request in `parameters`, as in Jina.
// `exclude_fields` keeps fields out of the index (an encoder's input tensor). Durable: every request that
// changes the index is in the log (index_log.hpp) and fsynced before it is
// answered, so an acknowledged document survives kill -9 and power loss.
#include <memory>

#include "docflow/executor.hpp"
#include "field_set.hpp"
#include "index_log.hpp"

namespace docflow::index {

class SimpleIndexer : public Executor {
 public:
  explicit SimpleIndexer(ExecutorContext context);
  void open() override;
  void close() override;

 private:
  void add(Request& r);
  void search(Request& r);
  void update(Request& r);
  void remove(Request& r);
  void clear(Request& r);
  void apply(LogRecord& record);
  std::string param(const Request& r, const std::string& key) const;
  std::int64_t int_param(const Request& r, const std::string& key) const;
  // The document as stored: a copy without matches and excluded fields.
  docarray::Document stored(const docarray::Document& d) const;

  // The embeddings of docs_, one row each in order, kept for /search: rows
  // of new documents are appended, any other change restacks on the next
  // search. `stacked_` may have spare rows (capacity doubles).
  const at::Tensor& embeddings();
  void appended(std::size_t first_new);
  // Makes the embeddings of docs_[begin, end) views of their rows in
  // `stacked_`, so that each is held once (a 1M x 512 index: 2 GB, not 4).
  void share_rows(std::size_t begin, std::size_t end);

  FieldSet excluded_;
  docarray::DocumentArray docs_;
  at::Tensor stacked_;
  std::size_t stacked_rows_ = 0;
  bool stacked_valid_ = false;
  at::Tensor rows_view_;
  std::unique_ptr<IndexLog> log_;
};

}  // namespace docflow::index
