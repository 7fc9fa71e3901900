#include "index_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docflow/error.hpp"

namespace docflow::index {
namespace {

constexpr char kMagic[8] = {'D', 'F', 'I', 'D', 'X', 'L', 'O', 'G'};
constexpr std::size_t kHeader = 16;
constexpr std::size_t kCompactedPerRecord = 1024;

std::uint32_t crc32(const char* data, std::size_t n) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ static_cast<unsigned char>(data[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  throw Error(what + " " + path + ": " + std::strerror(errno));
}

void write_all(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) io_error("cannot write to", path);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::string encode(const LogRecord& r) {
  docarray::Value fields = docarray::Value::map();
  fields["op"] = r.op;
  if (!r.ids.empty()) {
    docarray::Value::List ids;
    for (const auto& id : r.ids) ids.emplace_back(id);
    fields["ids"] = docarray::Value(std::move(ids));
  }
  const std::string payload = docarray::to_msgpack_envelope(fields, r.docs);
  if (payload.size() > 0xFFFFFFFFu) throw Error("an index record of " + std::to_string(payload.size()) +
                                                " bytes is over 4 GiB: send fewer documents per request");
  std::string out(8, '\0');
  const std::uint32_t len = static_cast<std::uint32_t>(payload.size()), crc = crc32(payload.data(), payload.size());
  std::memcpy(out.data(), &len, 4);
  std::memcpy(out.data() + 4, &crc, 4);
  return out + payload;
}

std::string header() {
  std::string h(kMagic, 8);
  const std::uint32_t version = 1, zero = 0;
  h.append(reinterpret_cast<const char*>(&version), 4);
  h.append(reinterpret_cast<const char*>(&zero), 4);
  return h;
}

void sync_folder(const std::filesystem::path& file) {
  int dir = ::open(file.parent_path().empty() ? "." : file.parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace

IndexLog::IndexLog(const std::string& path, const std::function<void(LogRecord&)>& replay,
                   const std::function<void(const std::string&)>& warn)
    : path_(path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path().empty() ? "." : std::filesystem::path(path).parent_path());
  const std::string lock = path + ".lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) io_error("cannot open the index's lock file", lock);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw Error("the index " + path + " is open in another process (it holds " + lock +
                "); stop that flow first, or give this one another `path`");
  }
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    ::close(lock_fd_);
    io_error("cannot open the index", path);
  }
  struct stat st {};
  ::fstat(fd_, &st);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) {
    const std::string h = header();
    write_all(fd_, h.data(), h.size(), path);
    if (::fsync(fd_) != 0) io_error("cannot fsync", path);
    sync_folder(path);
    return;
  }
  // Read it whole: the state it describes is held in memory anyway.
  std::string bytes(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd_, bytes.data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) io_error("cannot read the index", path);
    got += static_cast<std::size_t>(n);
  }
  if (size < kHeader || std::memcmp(bytes.data(), kMagic, 8) != 0)
    throw Error(path + " is not a docflow index log (no DFIDXLOG header); move it away or point `path` elsewhere");
  std::uint32_t version;
  std::memcpy(&version, bytes.data() + 8, 4);
  if (version != 1) throw Error(path + " is an index log of version " + std::to_string(version) + "; this docflow reads version 1");
  std::size_t off = kHeader;
  std::string torn;
  while (off < size) {
    if (size - off < 8) {
      torn = "a record header cut short";
      break;
    }
    std::uint32_t len, crc;
    std::memcpy(&len, bytes.data() + off, 4);
    std::memcpy(&crc, bytes.data() + off + 4, 4);
    if (len > size - off - 8) {
      torn = "a record of " + std::to_string(len) + " bytes with " + std::to_string(size - off - 8) + " left";
      break;
    }
    if (crc32(bytes.data() + off + 8, len) != crc) {
      torn = "a record whose checksum does not match";
      break;
    }
    LogRecord r;
    try {
      docarray::Envelope env = docarray::parse_msgpack_envelope(std::string_view(bytes.data() + off + 8, len));
      const docarray::Value* op = env.fields.find("op");
      if (!op || !op->is_string()) throw docarray::Error("no op");
      r.op = op->as_string();
      if (const docarray::Value* ids = env.fields.find("ids"))
        for (const auto& id : ids->as_list()) r.ids.push_back(id.as_string());
      r.docs = std::move(env.docs);
    } catch (const docarray::Error& e) {
      // The checksum matched, so this is not a torn write: refuse to guess.
      throw Error(path + ": record " + std::to_string(records_ + 1) + " at byte " + std::to_string(off) +
                  " is intact but does not decode (" + e.what() + ")");
    }
    replay(r);
    ++records_;
    off += 8 + len;
  }
  if (!torn.empty()) {
    warn(path + ": cut a torn tail at byte " + std::to_string(off) + " (" + torn + ", " + std::to_string(size - off) +
         " bytes; a request that was never acknowledged) after " + std::to_string(records_) + " intact records");
    if (::ftruncate(fd_, static_cast<off_t>(off)) != 0 || ::fsync(fd_) != 0) io_error("cannot truncate", path);
  }
  if (::lseek(fd_, 0, SEEK_END) < 0) io_error("cannot seek in", path);
}

IndexLog::~IndexLog() {
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

void IndexLog::append(const LogRecord& record) {
  const std::string bytes = encode(record);
  write_all(fd_, bytes.data(), bytes.size(), path_);
  if (::fdatasync(fd_) != 0) io_error("cannot fsync", path_);
  ++records_;
}

void IndexLog::rewrite(const docarray::DocumentArray& docs) {
  const std::string tmp = path_ + ".compacting";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("cannot create", tmp);
  const std::string h = header();
  std::uint64_t written = 0;
  try {
    write_all(fd, h.data(), h.size(), tmp);
    // Records of at most kCompactedPerRecord documents, each far below a
    // record's 4 GiB limit; replay applies them in order.
    for (auto& batch : docs.batches(kCompactedPerRecord)) {
      const std::string bytes = encode(LogRecord{"add", {}, std::move(batch)});
      write_all(fd, bytes.data(), bytes.size(), tmp);
      ++written;
    }
    if (::fsync(fd) != 0) io_error("cannot fsync", tmp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) io_error("cannot rename " + tmp + " to", path_);
  sync_folder(path_);
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) io_error("cannot reopen", path_);
  records_ = written;
}

}  // namespace docflow::index
