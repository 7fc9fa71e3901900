#pragma once
// A short, streaming description of many documents: count, fields in use,
// modalities, tensor and embedding shapes, chunks and matches.
#include <cstddef>
#include <map>
#include <set>
#include <string>

namespace docarray {

class Document;

class Summary {
 public:
  void add(const Document& doc);
  std::string str() const;
  std::size_t count() const { return count_; }

 private:
  std::size_t count_ = 0, chunks_ = 0, matches_ = 0;
  std::set<std::string> fields_, modalities_;
  std::map<std::string, std::size_t> tensor_shapes_, embedding_shapes_;
};

// One line for one document: id, modality, text (cut), uri, shapes, counts.
std::string describe(const Document& doc);

}  // namespace docarray
