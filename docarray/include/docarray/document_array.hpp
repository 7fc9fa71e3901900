#pragma once
// DocumentArray: an ordered list of Documents with O(1) lookup by id.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace docarray {

class Document;

class DocumentArray {
 public:
  DocumentArray();
  DocumentArray(std::vector<Document> docs);
  DocumentArray(const DocumentArray&);
  DocumentArray(DocumentArray&&) noexcept;
  DocumentArray& operator=(const DocumentArray&);
  DocumentArray& operator=(DocumentArray&&) noexcept;
  ~DocumentArray();

  std::size_t size() const { return docs_.size(); }
  bool empty() const { return docs_.empty(); }

  // Positional access. Mutable access may change ids, so it marks the id
  // index stale; the next lookup by id rebuilds it.
  Document& operator[](std::size_t i);
  const Document& operator[](std::size_t i) const { return docs_[i]; }
  Document& at(std::size_t i);
  const Document& at(std::size_t i) const;

  using iterator = std::vector<Document>::iterator;
  using const_iterator = std::vector<Document>::const_iterator;
  iterator begin();
  iterator end();
  const_iterator begin() const { return docs_.begin(); }
  const_iterator end() const { return docs_.end(); }

  void append(Document doc);
  void extend(const DocumentArray& other);
  void extend(DocumentArray&& other);
  void reserve(std::size_t n) { docs_.reserve(n); }
  void clear();

  // Lookup by id: nullptr / false when absent, `get` throws docarray::Error.
  Document* find(const std::string& id);
  const Document* find(const std::string& id) const;
  Document& get(const std::string& id);
  const Document& get(const std::string& id) const;
  bool contains(const std::string& id) const { return find(id) != nullptr; }
  std::ptrdiff_t index_of(const std::string& id) const;  // -1 when absent

  void erase(std::size_t position);
  bool erase(const std::string& id);

  // Traversal paths in DocArray's grammar: "@r", "@c", "@m", "@cc", "@cm",
  // "@r,c", "@c[:1]", "@m[-3:]" (the leading '@' is optional). Returns the
  // selected documents in traversal order; pointers stay valid until this
  // array or one of its documents is structurally modified.
  std::vector<Document*> traverse_flat(const std::string& path);
  std::vector<const Document*> traverse_flat(const std::string& path) const;

  // The documents (at `path`) whose modality equals `modality`.
  std::vector<Document*> filter_modality(const std::string& modality,
                                         const std::string& path = "@r");

  // Consecutive batches of at most `batch_size` documents (copies).
  std::vector<DocumentArray> batches(std::size_t batch_size) const;

  // The embeddings of the documents at `path`, stacked along a new first
  // dimension. Every selected document must have an embedding of one shape.
  at::Tensor embeddings(const std::string& path = "@r") const;

  // A few lines: size, fields in use, tensor and embedding shapes.
  std::string summary() const;

  std::vector<Document>& raw() { mark_stale(); return docs_; }
  const std::vector<Document>& raw() const { return docs_; }

 private:
  void mark_stale() { index_stale_ = true; }
  void rebuild_index() const;
  void index_new_documents() const;
  const Document* lookup(const std::string& id) const;

  // The id index is built lazily: appends only add to docs_, and the first
  // lookup afterwards indexes the documents added since (amortised O(1)),
  // so that reading a large file pays nothing for an index it never uses.
  std::vector<Document> docs_;
  mutable std::unordered_map<std::string, std::size_t> index_;
  mutable std::size_t indexed_ = 0;  // docs_[0, indexed_) are in index_
  mutable bool index_stale_ = false; // an id may have changed: rebuild all
};

}  // namespace docarray
