#include "docarray/document.hpp"

#include <ATen/ATen.h>

#include <random>

namespace docarray {

std::string random_id() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  static const char* hex = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = gen();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = hex[bits & 0xF];
      bits >>= 4;
    }
  }
  return id;
}

Document::Document() : id(random_id()) {}
Document::Document(std::string id_) : id(std::move(id_)) {}

Document& Document::add_chunk(Document chunk) {
  chunk.parent_id = id;
  chunk.granularity = granularity + 1;
  chunks.append(std::move(chunk));
  return chunks[chunks.size() - 1];
}

Document& Document::add_match(Document match) {
  match.adjacency = adjacency + 1;
  matches.append(std::move(match));
  return matches[matches.size() - 1];
}

bool tensor_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.is_floating_point() || a.is_complex()) return at::equal(a.nan_to_num(0, 1, -1), b.nan_to_num(0, 1, -1)) &&
                                                   at::equal(a.isnan(), b.isnan());
  return at::equal(a, b);
}

bool equal(const Document& a, const Document& b) {
  return a.id == b.id && a.parent_id == b.parent_id && a.granularity == b.granularity &&
         a.adjacency == b.adjacency && a.text == b.text && a.uri == b.uri &&
         a.mime_type == b.mime_type && a.blob == b.blob && a.modality == b.modality &&
         a.weight == b.weight && a.tags == b.tags && a.scores == b.scores &&
         a.evaluations == b.evaluations && tensor_equal(a.tensor, b.tensor) &&
         tensor_equal(a.embedding, b.embedding) && equal(a.chunks, b.chunks) &&
         equal(a.matches, b.matches);
}

bool equal(const DocumentArray& a, const DocumentArray& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!equal(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace docarray
