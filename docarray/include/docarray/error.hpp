#pragma once
// The exception types of the docarray layer. Each carries enough context for
// a user to find the fault (file, record, byte offset, field) in its message.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace docarray {

// Any misuse of the data model: a bad traversal path, an unknown metric, a
// missing id, an invalid argument. The message is kept valid UTF-8 (a broken
// byte it quotes is written as \xNN), so that writing it into JSON (a status
// file, an HTTP answer) cannot fail and hide it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what);
};

// A document file that cannot be read: wrong magic, unsupported version,
// truncation, a corrupt record. `record` is the 0-based index of the record
// being read (or -1 for the header) and `offset` the byte offset where it
// starts.
class FormatError : public Error {
 public:
  FormatError(const std::string& source, std::int64_t record, std::uint64_t offset,
              const std::string& what);
  const std::string& source() const { return source_; }
  std::int64_t record() const { return record_; }
  std::uint64_t offset() const { return offset_; }

 private:
  std::string source_;
  std::int64_t record_;
  std::uint64_t offset_;
};

}  // namespace docarray
