#pragma once
// docarray's binary document files: a 16-byte header, then one
// length-prefixed msgpack record per document, then an end marker with the
// record count, so that truncation at a record boundary is detected too.
//
//   header  : magic "DFDOCS\r\n" | u16 version | u16 flags (bit 0: zstd) | u32 0
//   record  : u32 length (> 0)   | msgpack map of the document's set fields
//   end     : u32 0              | u64 number of records
//
// All integers little-endian. With zstd, everything after the header is one
// zstd stream. Writing and reading are streaming: memory stays bounded by the
// largest document, whatever the file's size.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "docarray/document.hpp"

namespace docarray {

enum class Compression { None, Zstd };

constexpr std::uint16_t kBinaryFormatVersion = 1;

class BinaryWriter {
 public:
  // Writes to a file (created or truncated) or to a caller-owned stream.
  explicit BinaryWriter(const std::string& path, Compression compression = Compression::None);
  explicit BinaryWriter(std::ostream& out, Compression compression = Compression::None,
                        std::string name = "<stream>");
  ~BinaryWriter();  // closes if close() was not called (errors are swallowed there)
  BinaryWriter(const BinaryWriter&) = delete;
  BinaryWriter& operator=(const BinaryWriter&) = delete;

  void write(const Document& doc);
  void write(const DocumentArray& docs);
  // Writes the end marker and flushes; throws docarray::Error on I/O failure.
  void close();
  std::uint64_t count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class BinaryReader {
 public:
  explicit BinaryReader(const std::string& path);
  explicit BinaryReader(std::istream& in, std::string name = "<stream>");
  ~BinaryReader();
  BinaryReader(const BinaryReader&) = delete;
  BinaryReader& operator=(const BinaryReader&) = delete;

  // Reads the next document; false at the (verified) end of the file.
  // Throws docarray::FormatError naming the record and byte offset.
  bool next(Document& doc);
  Compression compression() const;
  std::uint16_t version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void save_binary(const DocumentArray& docs, const std::string& path,
                 Compression compression = Compression::None);
DocumentArray load_binary(const std::string& path);

// True when the file starts with the binary format's magic.
bool is_binary_file(const std::string& path);

}  // namespace docarray
