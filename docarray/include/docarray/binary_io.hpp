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
// zstd stream.
//
// Version 2 (written since 2026-12) aligns tensor payloads: a tensor of 64
// bytes or more carries a "pad" bin before its "data" so that the payload
// starts on a multiple of 64 bytes of the (decompressed) stream. Version-1
// files (no padding) are read as before.
//
// Reading a file by path maps it: tensors then alias the mapped bytes (zero
// copy, copy-on-write if changed in place) and keep the mapping alive for as
// long as any of them lives; nothing is allocated per tensor. Records are
// still checked one by one, with the same errors as a stream. Like any
// mapped file (numpy.memmap), it must not be truncated by another process
// while documents read from it live. Compressed files and streams copy each
// payload once into its tensor; memory stays bounded by the largest
// document, whatever the file's size.
//
// Writing an array (write(docs), save_binary) hands the tensors' own memory
// to writev in batches of a few MiB: no staging copy. write(doc) copies what
// it writes at once, so the caller may change the document right after.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "docarray/document.hpp"

namespace docarray {

enum class Compression { None, Zstd };

constexpr std::uint16_t kBinaryFormatVersion = 2;  // written; versions 1 and 2 are read

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
  // Reads the next document onto the end of `docs` (decoded in place, no
  // move); false at the verified end. On an error `docs` is unchanged.
  bool append_next(DocumentArray& docs);
  // Reads every remaining document onto the end of `docs`; returns how many.
  // An uncompressed file read by path of 8,192 records or more is decoded
  // on up to 8 threads (the machine's cores), in runs of records handed out
  // while this thread walks the file; errors are those of reading
  // one record at a time (a damaged file is read again that way to name
  // its first fault), and on an error `docs` keeps the documents before the
  // faulty record, as with append_next.
  std::size_t append_all(DocumentArray& docs);
  Compression compression() const;
  std::uint16_t version() const;
  // The record count the end marker declares, where it can be read without
  // reading the records (an uncompressed file read by path): a hint for
  // reserving memory, bounded by what the file's size can hold, and checked
  // against the records at the end like any end marker.
  std::optional<std::uint64_t> count_hint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void save_binary(const DocumentArray& docs, const std::string& path,
                 Compression compression = Compression::None);
DocumentArray load_binary(const std::string& path);
// Room in `docs` for `count` more documents (a reader's count_hint), where
// memory allows: no regrowth, each move of a Document being 584 bytes.
void reserve_for(DocumentArray& docs, std::optional<std::uint64_t> count);

// True when the file starts with the binary format's magic.
bool is_binary_file(const std::string& path);

}  // namespace docarray
