#include "docarray/document_file.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "docarray/error.hpp"

namespace docarray {

FileFormat format_for_path(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jsonl" || ext == ".ndjson" || ext == ".json" ? FileFormat::Jsonl : FileFormat::Binary;
}

namespace {

// True when the file's first byte other than white space opens a JSON object.
bool starts_like_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char c;
  while (f.get(c))
    if (!std::isspace(static_cast<unsigned char>(c))) return c == '{';
  return false;
}

}  // namespace

// The format by content: the binary magic, or JSON Lines for .jsonl files and
// for files of any other name that start with a JSON object. Anything else
// (an empty or damaged .docs file, say) goes to the binary reader, whose
// error says what is wrong with the header, instead of reading as an empty
// or invalid JSON Lines file.
DocumentFileReader::DocumentFileReader(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("document file not found: " + path);
  if (!is_binary_file(path) && (format_for_path(path) == FileFormat::Jsonl || starts_like_json(path)))
    jsonl_ = std::make_unique<JsonlReader>(path);
  else
    binary_ = std::make_unique<BinaryReader>(path);
}

bool DocumentFileReader::next(Document& doc) { return binary_ ? binary_->next(doc) : jsonl_->next(doc); }

bool DocumentFileReader::append_next(DocumentArray& docs) {
  if (binary_) return binary_->append_next(docs);
  Document d{std::string()};
  if (!jsonl_->next(d)) return false;
  docs.append(std::move(d));
  return true;
}

std::size_t DocumentFileReader::append_all(DocumentArray& docs) {
  if (binary_) return binary_->append_all(docs);
  const std::size_t before = docs.size();
  while (append_next(docs)) {
  }
  return docs.size() - before;
}

DocumentFileWriter::DocumentFileWriter(const std::string& path, Compression compression) {
  if (format_for_path(path) == FileFormat::Jsonl) {
    if (compression != Compression::None)
      throw Error("compression applies to the binary format only, not to " + path);
    jsonl_ = std::make_unique<JsonlWriter>(path);
  } else {
    binary_ = std::make_unique<BinaryWriter>(path, compression);
  }
}

void DocumentFileWriter::write(const Document& doc) { binary_ ? binary_->write(doc) : jsonl_->write(doc); }
void DocumentFileWriter::write(const DocumentArray& docs) { binary_ ? binary_->write(docs) : jsonl_->write(docs); }
void DocumentFileWriter::close() { binary_ ? binary_->close() : jsonl_->close(); }

DocumentArray load_documents(const std::string& path) {
  DocumentFileReader r(path);
  DocumentArray out;
  reserve_for(out, r.count_hint());
  r.append_all(out);
  return out;
}

void save_documents(const DocumentArray& docs, const std::string& path, Compression compression) {
  DocumentFileWriter w(path, compression);
  w.write(docs);
  w.close();
}

}  // namespace docarray
