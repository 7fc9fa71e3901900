#include "docarray/summary.hpp"

#include <sstream>

#include "docarray/document.hpp"
#include "docarray/dtype.hpp"

namespace docarray {
namespace {
std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << dtype_name(t.scalar_type()) << t.sizes();
  return s.str();
}

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}
}  // namespace

void Summary::add(const Document& d) {
  ++count_;
  if (!d.parent_id.empty()) fields_.insert("parent_id");
  if (!d.text.empty()) fields_.insert("text");
  if (!d.uri.empty()) fields_.insert("uri");
  if (!d.mime_type.empty()) fields_.insert("mime_type");
  if (!d.blob.empty()) fields_.insert("blob");
  if (!d.tags.is_null()) fields_.insert("tags");
  if (!d.scores.empty()) fields_.insert("scores");
  if (!d.evaluations.empty()) fields_.insert("evaluations");
  if (d.weight != 0.0) fields_.insert("weight");
  if (d.tensor.defined()) fields_.insert("tensor");
  if (d.embedding.defined()) fields_.insert("embedding");
  if (!d.modality.empty()) modalities_.insert(d.modality);
  if (d.tensor.defined()) ++tensor_shapes_[shape_of(d.tensor)];
  if (d.embedding.defined()) ++embedding_shapes_[shape_of(d.embedding)];
  chunks_ += d.chunks.size();
  matches_ += d.matches.size();
}

std::string Summary::str() const {
  std::ostringstream out;
  out << count_ << " documents\n";
  out << "  fields: " << (fields_.empty() ? "id only" : join(fields_)) << "\n";
  if (!modalities_.empty()) out << "  modalities: " << join(modalities_) << "\n";
  for (const auto& [shape, n] : tensor_shapes_) out << "  tensor " << shape << ": " << n << "\n";
  for (const auto& [shape, n] : embedding_shapes_) out << "  embedding " << shape << ": " << n << "\n";
  out << "  chunks: " << chunks_ << ", matches: " << matches_ << "\n";
  return out.str();
}

std::string describe(const Document& d) {
  std::ostringstream out;
  out << d.id;
  if (!d.modality.empty()) out << " [" << d.modality << "]";
  if (!d.text.empty()) {
    std::string t = d.text.size() > 60 ? d.text.substr(0, 57) + "..." : d.text;
    out << " text=\"" << t << "\"";
  }
  if (!d.uri.empty()) out << " uri=" << d.uri;
  if (!d.blob.empty()) out << " blob=" << d.blob.size() << "B";
  if (d.tensor.defined()) out << " tensor=" << shape_of(d.tensor);
  if (d.embedding.defined()) out << " embedding=" << shape_of(d.embedding);
  if (!d.tags.is_null()) {
    std::string tags = d.tags.dump();
    out << " tags=" << (tags.size() > 80 ? tags.substr(0, 77) + "..." : tags);
  }
  for (const auto& [name, s] : d.scores) out << " " << name << "=" << s.value;
  if (!d.chunks.empty()) out << " chunks=" << d.chunks.size();
  if (!d.matches.empty()) out << " matches=" << d.matches.size();
  return out.str();
}

}  // namespace docarray
