#pragma once
// The indexer's durable state: an append-only log of operations, one record
// per request, each fsynced before the request is answered.
//
//   header : magic "DFIDXLOG" | u32 version (1) | u32 0
//   record : u32 length | u32 crc32 of the payload | payload
//   payload: a msgpack envelope (docarray/envelope.hpp): {"op": "add" |
//            "update" | "delete" | "clear", "ids": [...], "data": [docs]}
//
// A crash can leave a torn last record (a short write, or bytes that never
// reached the disk): reopening stops at the first record whose length runs
// past the end or whose checksum does not match, truncates the file there
// and says so. Every record before it was acknowledged; the torn one never was.
//
// One process owns a log at a time: it holds an exclusive flock on PATH.lock
// (a second `flow run` or `flow serve` on the same index is refused, rather
// than two processes appending to and compacting one file).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "docarray/document.hpp"

namespace docflow::index {

struct LogRecord {
  std::string op;                // add, update, delete, clear
  std::vector<std::string> ids;  // delete
  docarray::DocumentArray docs;  // add, update
};

class IndexLog {
 public:
  // Opens (creating) `path` and replays every intact record through
  // `replay`; `warn` hears about a torn tail that was cut off.
  IndexLog(const std::string& path, const std::function<void(LogRecord&)>& replay,
           const std::function<void(const std::string&)>& warn);
  ~IndexLog();
  IndexLog(const IndexLog&) = delete;
  IndexLog& operator=(const IndexLog&) = delete;

  // Appends and fsyncs: when it returns, the record survives a crash.
  void append(const LogRecord& record);
  // Replaces the whole log by records holding `docs` (compaction),
  // atomically: a new file, fsync, rename, fsync of the folder.
  void rewrite(const docarray::DocumentArray& docs);
  std::uint64_t records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int lock_fd_ = -1;
  int fd_ = -1;
  std::uint64_t records_ = 0;
};

}  // namespace docflow::index
