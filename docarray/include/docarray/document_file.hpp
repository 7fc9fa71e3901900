#pragma once
// Document files of either format behind one interface. Reading detects the
// format by content (the binary magic); writing chooses it by extension:
// ".jsonl", ".ndjson" and ".json" are JSON Lines, anything else is binary.
#include <memory>
#include <string>

#include "docarray/binary_io.hpp"
#include "docarray/jsonl_io.hpp"

namespace docarray {

enum class FileFormat { Binary, Jsonl };

FileFormat format_for_path(const std::string& path);

class DocumentFileReader {
 public:
  explicit DocumentFileReader(const std::string& path);
  bool next(Document& doc);
  bool append_next(DocumentArray& docs);
  // Every remaining document (BinaryReader::append_all); returns how many.
  std::size_t append_all(DocumentArray& docs);
  FileFormat format() const { return binary_ ? FileFormat::Binary : FileFormat::Jsonl; }
  std::optional<std::uint64_t> count_hint() const { return binary_ ? binary_->count_hint() : std::nullopt; }

 private:
  std::unique_ptr<BinaryReader> binary_;
  std::unique_ptr<JsonlReader> jsonl_;
};

class DocumentFileWriter {
 public:
  // `compression` applies to the binary format only.
  explicit DocumentFileWriter(const std::string& path, Compression compression = Compression::None);
  void write(const Document& doc);
  void write(const DocumentArray& docs);  // binary: tensors written from their own memory, no staging copy
  void close();

 private:
  std::unique_ptr<BinaryWriter> binary_;
  std::unique_ptr<JsonlWriter> jsonl_;
};

DocumentArray load_documents(const std::string& path);
void save_documents(const DocumentArray& docs, const std::string& path,
                    Compression compression = Compression::None);

}  // namespace docarray
