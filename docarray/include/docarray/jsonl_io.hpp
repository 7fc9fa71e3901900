#pragma once
// JSON Lines, the readable twin of the binary format: one document per line,
// DocArray's field names, nested chunks and matches, tensors as
// {"dtype": "float32", "shape": [..], "data": [..]} (NaN and infinities as the
// strings "NaN", "Infinity", "-Infinity"), blob as base64.
#include <iosfwd>
#include <memory>
#include <string>

#include "docarray/document.hpp"

namespace docarray {

std::string to_json(const Document& doc);
// Throws docarray::Error naming the field at fault.
Document from_json(const std::string& text);

class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path);
  explicit JsonlWriter(std::ostream& out, std::string name = "<stream>");
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  void write(const Document& doc);
  void write(const DocumentArray& docs);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class JsonlReader {
 public:
  explicit JsonlReader(const std::string& path);
  explicit JsonlReader(std::istream& in, std::string name = "<stream>");
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;
  // Next document, skipping blank lines. Errors name the file and line.
  bool next(Document& doc);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void save_jsonl(const DocumentArray& docs, const std::string& path);
DocumentArray load_jsonl(const std::string& path);

}  // namespace docarray
