#include "simple_indexer.hpp"

#include <utility>

#include <ATen/ATen.h>

#include <filesystem>

#include "docarray/error.hpp"
#include "docarray/match.hpp"
#include "docarray/storage_view.hpp"

namespace docflow::index {

SimpleIndexer::SimpleIndexer(ExecutorContext context) : Executor(std::move(context)) {
  on("/index", [this](Request& r) { add(r); });
  on("/search", [this](Request& r) { search(r); });
  on("/update", [this](Request& r) { update(r); });
  on("/delete", [this](Request& r) { remove(r); });
  on("/clear", [this](Request& r) { clear(r); });
}

namespace {
constexpr const char* kStoredFields = "tensor, blob, text, uri, tags, chunks";
constexpr const char* kMatchFields = "embedding, tensor, blob, text, uri, tags, chunks";
}  // namespace

void SimpleIndexer::open() {
  excluded_ = FieldSet::parse(params().get_string("exclude_fields"), "exclude_fields", kStoredFields);
  FieldSet::parse(params().get_string("match_exclude_fields"), "match_exclude_fields", kMatchFields);
  std::string path = params().get_string("path");
  if (path.empty()) path = (context().workspace / "index.log").string();
  std::uint64_t dead = 0;
  log_ = std::make_unique<IndexLog>(
      path,
      [&](LogRecord& r) {
        const std::size_t before = docs_.size();
        apply(r);
        dead += r.op == "add" ? 0 : 1 + before - std::min(before, docs_.size());
      },
      [this](const std::string& warning) { log().warning(name(), warning); });
  // Deletes and updates leave dead records behind: compact when they are
  // most of the log.
  if (log_->records() > 16 && dead * 2 > log_->records()) {
    log_->rewrite(docs_);
    log().info(name(), "compacted " + path);
  }
  // The first search would stack every embedding into one matrix (seconds
  // at 1M documents): do it now, while the service is not yet ready.
  if (!docs_.empty()) embeddings();
  log().info(name(), "index " + path + ": " + std::to_string(docs_.size()) + " documents");
}

void SimpleIndexer::close() {
  if (log_) log().info(name(), "closed the index with " + std::to_string(docs_.size()) + " documents");
  log_.reset();
}

std::string SimpleIndexer::param(const Request& r, const std::string& key) const {
  if (const docarray::Value* v = r.parameters.find(key)) {
    if (!v->is_string()) throw Error("parameters." + key + " expects a string, found " + v->dump());
    return v->as_string();
  }
  return params().get_string(key);
}

std::int64_t SimpleIndexer::int_param(const Request& r, const std::string& key) const {
  if (const docarray::Value* v = r.parameters.find(key)) {
    if (!v->is_int() || v->as_int() < 1) throw Error("parameters." + key + " expects a positive integer, found " + v->dump());
    return v->as_int();
  }
  return params().get_int(key);
}

// The state changes of every operation, for a live request and for replay.
void SimpleIndexer::apply(LogRecord& rec) {
  if (rec.op == "add") {
    const std::size_t before = docs_.size();
    bool replaced = false;
    for (auto& d : rec.docs) {
      if (docarray::Document* old = docs_.find(d.id)) {  // the same id twice: the newer wins
        *old = std::move(d);
        replaced = true;
      } else {
        docs_.append(std::move(d));
      }
    }
    if (replaced) stacked_valid_ = false;
    else appended(before);
    return;
  }
  stacked_valid_ = false;
  if (rec.op == "update") {
    for (auto& d : rec.docs)
      if (docarray::Document* old = docs_.find(d.id)) *old = std::move(d);
  } else if (rec.op == "delete") {
    for (const auto& id : rec.ids) docs_.erase(id);
  } else if (rec.op == "clear") {
    docs_.clear();
  } else {
    throw Error("unknown operation '" + rec.op + "' in the index log");
  }
}

void SimpleIndexer::add(Request& r) {
  LogRecord rec{"add", {}, {}};
  for (docarray::Document* d : r.docs.traverse_flat(param(r, "traversal_path"))) rec.docs.append(stored(*d));
  if (rec.docs.empty()) return;
  // Durable first, then visible: a failed write changes nothing.
  log_->append(rec);
  apply(rec);
}

void SimpleIndexer::search(Request& r) {
  if (docs_.empty()) {
    for (docarray::Document* q : r.docs.traverse_flat(param(r, "query_traversal_path"))) q->matches = {};
    return;
  }
  docarray::MatchOptions o;
  o.metric = param(r, "metric");
  o.limit = static_cast<std::size_t>(int_param(r, "limit"));
  o.query_path = param(r, "query_traversal_path");
  docarray::match(r.docs, docs_, embeddings(), o);
  const FieldSet leave_out = FieldSet::parse(param(r, "match_exclude_fields"), "match_exclude_fields", kMatchFields);
  if (leave_out.empty()) return;
  for (docarray::Document* q : r.docs.traverse_flat(o.query_path))
    for (auto& m : q->matches) leave_out.clear_in(m);
}

void SimpleIndexer::appended(std::size_t first_new) {
  if (!stacked_valid_ || first_new >= docs_.size()) return;  // restacked whole on the next search
  const at::Tensor& e = docs_[first_new].embedding;
  if (stacked_.size(1) != e.numel() || stacked_.scalar_type() != e.scalar_type()) {
    stacked_valid_ = false;  // match() names the document whose embedding does not fit
    return;
  }
  const auto need = static_cast<std::int64_t>(docs_.size());
  bool moved = false;
  if (need > stacked_.size(0)) {
    at::Tensor grown = at::empty({std::max<std::int64_t>(need, 2 * stacked_.size(0)), stacked_.size(1)}, stacked_.options());
    grown.narrow(0, 0, static_cast<std::int64_t>(stacked_rows_)).copy_(stacked_.narrow(0, 0, static_cast<std::int64_t>(stacked_rows_)));
    stacked_ = grown;
    moved = true;
  }
  for (std::size_t i = first_new; i < docs_.size(); ++i) {
    const at::Tensor& row = docs_[i].embedding;
    if (row.numel() != stacked_.size(1)) {
      stacked_valid_ = false;
      return;
    }
    stacked_[static_cast<std::int64_t>(i)].copy_(row.detach().reshape({-1}));
  }
  // After a growth every document moves to the new matrix (the old one is
  // freed then); otherwise only the new ones join it. Amortised O(1).
  share_rows(moved ? 0 : first_new, docs_.size());
  stacked_rows_ = docs_.size();
  rows_view_ = stacked_.narrow(0, 0, static_cast<std::int64_t>(stacked_rows_));
}

void SimpleIndexer::share_rows(std::size_t begin, std::size_t end) {
  const std::int64_t dim = stacked_.size(1);
  for (std::size_t i = begin; i < end; ++i) {
    // Through the const accessor: mutable access would mark the id index
    // stale (it may change ids), and only the embedding changes here.
    at::Tensor& e = const_cast<docarray::Document&>(std::as_const(docs_)[i]).embedding;
    // Built directly: a dispatcher op per row (select, view) would cost a
    // second at a million rows.
    e = docarray::storage_view(stacked_.storage(), stacked_.storage_offset() + static_cast<std::int64_t>(i) * dim,
                               e.sizes(), stacked_.scalar_type());
  }
}

const at::Tensor& SimpleIndexer::embeddings() {
  if (!stacked_valid_) {
    // docarray::DocumentArray::embeddings stacks them (and names a document
    // without one, or with another size).
    stacked_ = docs_.embeddings().reshape({static_cast<std::int64_t>(docs_.size()), -1}).contiguous();
    stacked_rows_ = docs_.size();
    stacked_valid_ = true;
    rows_view_ = stacked_;
    share_rows(0, docs_.size());
  }
  return rows_view_;
}

docarray::Document SimpleIndexer::stored(const docarray::Document& d) const {
  if (!d.embedding.defined()) throw Error("document '" + d.id + "' has no embedding to index (encode it first)");
  // One size for the whole index: a document of another size would make every later search fail.
  if (!docs_.empty() && d.embedding.numel() != docs_[0].embedding.numel())
    throw Error("document '" + d.id + "' has an embedding of " + std::to_string(d.embedding.numel()) +
                " values; the index's have " + std::to_string(docs_[0].embedding.numel()));
  docarray::Document copy = d;
  copy.matches = {};
  excluded_.clear_in(copy);
  return copy;
}

void SimpleIndexer::update(Request& r) {
  LogRecord rec{"update", {}, {}};
  std::vector<std::string> missing;
  for (const auto& d : r.docs) {
    if (!docs_.contains(d.id)) missing.push_back(d.id);
    else rec.docs.append(stored(d));
  }
  if (!missing.empty()) {
    std::string ids;
    for (const auto& id : missing) ids += (ids.empty() ? "'" : ", '") + id + "'";
    throw Error("cannot update documents that are not in the index: " + ids + " (index them first)");
  }
  if (rec.docs.empty()) return;
  log_->append(rec);
  apply(rec);
}

void SimpleIndexer::remove(Request& r) {
  LogRecord rec{"delete", {}, {}};
  if (const docarray::Value* ids = r.parameters.find("ids")) {
    if (!ids->is_list()) throw Error("parameters.ids expects a list of document ids, found " + ids->dump());
    for (const auto& id : ids->as_list()) {
      if (!id.is_string()) throw Error("parameters.ids expects strings, found " + id.dump());
      rec.ids.push_back(id.as_string());
    }
  } else {
    for (const auto& d : r.docs) rec.ids.push_back(d.id);
  }
  // Ids that are not there are ignored, as deleting twice is not an error.
  std::vector<std::string> present;
  for (const auto& id : rec.ids)
    if (docs_.contains(id)) present.push_back(id);
  rec.ids = std::move(present);
  if (rec.ids.empty()) return;
  log_->append(rec);
  apply(rec);
}

void SimpleIndexer::clear(Request&) {
  LogRecord rec{"clear", {}, {}};
  log_->append(rec);
  apply(rec);
}

}  // namespace docflow::index
