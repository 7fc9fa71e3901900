#include "docarray/document_array.hpp"

#include <ATen/ATen.h>

#include <sstream>

#include "docarray/document.hpp"
#include "docarray/error.hpp"
#include "docarray/summary.hpp"

namespace docarray {

DocumentArray::DocumentArray() = default;
DocumentArray::DocumentArray(std::vector<Document> docs) : docs_(std::move(docs)) {}
DocumentArray::DocumentArray(const DocumentArray& o) : docs_(o.docs_) {}
DocumentArray::DocumentArray(DocumentArray&& o) noexcept
    : docs_(std::move(o.docs_)), index_(std::move(o.index_)), indexed_(o.indexed_), index_stale_(o.index_stale_) {
  o.clear();
}
DocumentArray& DocumentArray::operator=(const DocumentArray& o) {
  if (this != &o) {
    docs_ = o.docs_;
    index_.clear();
    indexed_ = 0;
    index_stale_ = false;
  }
  return *this;
}
DocumentArray& DocumentArray::operator=(DocumentArray&& o) noexcept {
  docs_ = std::move(o.docs_);
  index_ = std::move(o.index_);
  indexed_ = o.indexed_;
  index_stale_ = o.index_stale_;
  o.clear();
  return *this;
}
DocumentArray::~DocumentArray() = default;

Document& DocumentArray::operator[](std::size_t i) {
  mark_stale();
  return docs_[i];
}
Document& DocumentArray::at(std::size_t i) {
  if (i >= docs_.size())
    throw Error("index " + std::to_string(i) + " out of range for a DocumentArray of " +
                std::to_string(docs_.size()));
  return (*this)[i];
}
const Document& DocumentArray::at(std::size_t i) const {
  if (i >= docs_.size())
    throw Error("index " + std::to_string(i) + " out of range for a DocumentArray of " +
                std::to_string(docs_.size()));
  return docs_[i];
}
DocumentArray::iterator DocumentArray::begin() {
  mark_stale();
  return docs_.begin();
}
DocumentArray::iterator DocumentArray::end() {
  mark_stale();
  return docs_.end();
}

void DocumentArray::append(Document doc) { docs_.push_back(std::move(doc)); }
void DocumentArray::extend(const DocumentArray& other) {
  docs_.reserve(docs_.size() + other.size());
  for (const auto& d : other.docs_) append(d);
}
void DocumentArray::extend(DocumentArray&& other) {
  docs_.reserve(docs_.size() + other.size());
  for (auto& d : other.docs_) append(std::move(d));
  other.clear();
}
void DocumentArray::clear() {
  docs_.clear();
  index_.clear();
  indexed_ = 0;
  index_stale_ = false;
}

void DocumentArray::index_new_documents() const {
  // With duplicate ids the index points at the last one, as DocArray's does.
  index_.reserve(docs_.size());
  for (; indexed_ < docs_.size(); ++indexed_) index_[docs_[indexed_].id] = indexed_;
}

void DocumentArray::rebuild_index() const {
  index_.clear();
  indexed_ = 0;
  index_stale_ = false;
  index_new_documents();
}

const Document* DocumentArray::lookup(const std::string& id) const {
  if (indexed_ > docs_.size()) index_stale_ = true;  // shrunk through raw()
  if (!index_stale_) index_new_documents();
  // A mutable reference handed out earlier may have changed an id: trust the
  // index only when it is fresh, or when the hit is confirmed.
  auto it = index_.find(id);
  if (it != index_.end() && it->second < docs_.size() && docs_[it->second].id == id)
    return &docs_[it->second];
  if (!index_stale_) return nullptr;
  rebuild_index();
  it = index_.find(id);
  return it == index_.end() ? nullptr : &docs_[it->second];
}

Document* DocumentArray::find(const std::string& id) {
  return const_cast<Document*>(lookup(id));
}
const Document* DocumentArray::find(const std::string& id) const { return lookup(id); }
Document& DocumentArray::get(const std::string& id) {
  if (auto* d = find(id)) return *d;
  throw Error("no document with id '" + id + "' in this DocumentArray of " +
              std::to_string(size()));
}
const Document& DocumentArray::get(const std::string& id) const {
  if (auto* d = find(id)) return *d;
  throw Error("no document with id '" + id + "' in this DocumentArray of " +
              std::to_string(size()));
}
std::ptrdiff_t DocumentArray::index_of(const std::string& id) const {
  const Document* d = lookup(id);
  return d ? d - docs_.data() : -1;
}

void DocumentArray::erase(std::size_t position) {
  if (position >= docs_.size())
    throw Error("erase: index " + std::to_string(position) + " out of range for a DocumentArray of " +
                std::to_string(docs_.size()));
  docs_.erase(docs_.begin() + static_cast<std::ptrdiff_t>(position));
  rebuild_index();
}
bool DocumentArray::erase(const std::string& id) {
  std::ptrdiff_t i = index_of(id);
  if (i < 0) return false;
  erase(static_cast<std::size_t>(i));
  return true;
}

std::vector<DocumentArray> DocumentArray::batches(std::size_t batch_size) const {
  if (batch_size == 0) throw Error("batches: batch_size must be at least 1");
  std::vector<DocumentArray> out;
  for (std::size_t start = 0; start < docs_.size(); start += batch_size) {
    DocumentArray b;
    std::size_t stop = std::min(docs_.size(), start + batch_size);
    b.reserve(stop - start);
    for (std::size_t i = start; i < stop; ++i) b.append(docs_[i]);
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<Document*> DocumentArray::filter_modality(const std::string& modality,
                                                      const std::string& path) {
  std::vector<Document*> out;
  for (Document* d : traverse_flat(path)) {
    if (d->modality == modality) out.push_back(d);
  }
  return out;
}

at::Tensor DocumentArray::embeddings(const std::string& path) const {
  auto docs = traverse_flat(path);
  if (docs.empty()) throw Error("embeddings: no documents at traversal path '" + path + "'");
  std::vector<at::Tensor> rows;
  rows.reserve(docs.size());
  for (const Document* d : docs) {
    if (!d->embedding.defined())
      throw Error("embeddings: document '" + d->id + "' at path '" + path + "' has no embedding");
    if (!rows.empty() && d->embedding.sizes() != rows.front().sizes()) {
      std::ostringstream msg;
      msg << "embeddings: document '" << d->id << "' has an embedding of shape " << d->embedding.sizes()
          << ", the first one has " << rows.front().sizes();
      throw Error(msg.str());
    }
    rows.push_back(d->embedding);
  }
  return at::stack(rows);
}

std::string DocumentArray::summary() const {
  Summary summary;
  for (const auto& d : docs_) summary.add(d);
  return "DocumentArray with " + summary.str();
}

}  // namespace docarray
