#include "docarray/binary_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <fstream>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "docarray/error.hpp"
#include "docarray/limits.hpp"
#include "file_mapping.hpp"
#include "direct_decoder.hpp"
#include "msgpack_codec.hpp"

namespace docarray {
namespace {

// The slots of a whole file's documents (584 bytes each: 58 MB for 100k) are
// fresh memory that the read touches once, page by page: ask for 2 MB pages
// where the kernel makes them only on request (transparent huge pages in
// "madvise" mode, Debian's default), so that it takes one fault per 2 MB
// instead of one per 4 KB. A hint: nothing changes where it is refused.
void advise_huge_pages(const void* p, std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}


constexpr char kMagic[8] = {'D', 'F', 'D', 'O', 'C', 'S', '\r', '\n'};
constexpr std::size_t kHeaderSize = 16;
constexpr std::uint16_t kFlagZstd = 1;
constexpr std::size_t kIoChunk = 1 << 20;
// A thread decodes at least this many records of a file read whole: below
// it, starting one costs more than it saves. Records are handed out in runs
// of kRecordsPerRun, so that the threads end together.
constexpr std::size_t kRecordsPerThread = 4096;
constexpr std::size_t kRecordsPerRun = 512;

void put_u32(char* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
void put_u64(char* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
std::uint32_t get_u32(const char* p) { std::uint32_t v; std::memcpy(&v, p, 4); return v; }
std::uint64_t get_u64(const char* p) { std::uint64_t v; std::memcpy(&v, p, 8); return v; }

// Where bytes go after the header: a file descriptor (gathered writes) or a
// caller's stream, straight or through zstd. Small pieces are copied into a
// buffer at once (put: the caller may change them right after); gathered
// pieces (put_gather) are written before it returns, by reference.
class Sink {
 public:
  Sink(int fd, std::ostream* out, Compression c, std::string name) : fd_(fd), out_(out), name_(std::move(name)) {
    if (c == Compression::Zstd) {
      cctx_ = ZSTD_createCCtx();
      ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, 3);
      // The frame checksum makes any corruption of compressed data an error.
      ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
      zbuf_.resize(ZSTD_CStreamOutSize());
    } else {
      buf_.reserve(kIoChunk);
    }
  }
  ~Sink() { ZSTD_freeCCtx(cctx_); }

  void put(const char* p, std::size_t n) {
    if (cctx_) return compress(p, n, ZSTD_e_continue);
    if (buf_.size() + n > kIoChunk) flush_buffer();
    if (n >= kIoChunk) return raw_write(p, n);  // large tensors bypass the buffer
    buf_.insert(buf_.end(), p, p + n);
  }

  // Bytes that stay uncompressed whatever the compression: the header.
  void put_raw(const char* p, std::size_t n) {
    flush_buffer();
    raw_write(p, n);
  }

  void put_gather(const std::vector<iovec>& pieces) {
    if (cctx_) {
      for (const auto& v : pieces) compress(static_cast<const char*>(v.iov_base), v.iov_len, ZSTD_e_continue);
      return;
    }
    if (fd_ < 0) {  // a stream: one write call per piece would cost more than copying them together
      for (const auto& v : pieces) put(static_cast<const char*>(v.iov_base), v.iov_len);
      return;
    }
    flush_buffer();
    // Large tensors (1 MiB and more) are written from their own memory; the
    // batch buffer holds the rest (RecordBuffer::set_reference_min).
    std::size_t i = 0;
    std::vector<iovec> rest;
    while (i < pieces.size()) {
      const int count = static_cast<int>(std::min<std::size_t>(pieces.size() - i, IOV_MAX));
      const ssize_t wrote = ::writev(fd_, pieces.data() + i, count);
      if (wrote < 0) {
        if (errno == EINTR) continue;
        fail_errno();
      }
      // A short write: finish the piece it stopped in, then go on.
      std::size_t left = static_cast<std::size_t>(wrote);
      while (i < pieces.size() && left >= pieces[i].iov_len) left -= pieces[i++].iov_len;
      if (left > 0) {
        raw_write(static_cast<const char*>(pieces[i].iov_base) + left, pieces[i].iov_len - left);
        ++i;
      }
    }
  }

  void finish() {
    if (cctx_) compress(nullptr, 0, ZSTD_e_end);
    flush_buffer();
    if (out_) {
      out_->flush();
      if (!*out_) {
        failed_ = true;
        throw Error("cannot write " + name_ + ": flush failed (disk full?)");
      }
    }
  }

  // An I/O error happened: what was written is incomplete.
  bool failed() const { return failed_; }

 private:
  [[noreturn]] void fail_errno() {
    failed_ = true;
    throw Error("cannot write " + name_ + ": " + std::strerror(errno));
  }
  void raw_write(const char* p, std::size_t n) {
    if (out_) {
      out_->write(p, static_cast<std::streamsize>(n));
      if (!*out_) {
        failed_ = true;
        throw Error("cannot write " + name_ + " (disk full?)");
      }
      return;
    }
    while (n > 0) {
      const ssize_t wrote = ::write(fd_, p, n);
      if (wrote < 0) {
        if (errno == EINTR) continue;
        fail_errno();
      }
      p += wrote;
      n -= static_cast<std::size_t>(wrote);
    }
  }
  void flush_buffer() {
    if (!buf_.empty()) raw_write(buf_.data(), buf_.size());
    buf_.clear();
  }
  void compress(const char* p, std::size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{p, n, 0};
    for (;;) {
      ZSTD_outBuffer out{zbuf_.data(), zbuf_.size(), 0};
      std::size_t left = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(left)) {
        failed_ = true;
        throw Error("zstd compression of " + name_ + " failed: " + ZSTD_getErrorName(left));
      }
      raw_write(zbuf_.data(), out.pos);
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) break;
    }
  }

  int fd_;
  bool failed_ = false;
  std::ostream* out_;
  std::string name_;
  std::vector<char> buf_;
  ZSTD_CCtx* cctx_ = nullptr;
  std::vector<char> zbuf_;
};

// Where bytes come from after the header: a stream, or a mapped file's
// bytes, straight or through zstd. `read` returns fewer bytes than asked
// only at the end of the data.
class Source {
 public:
  explicit Source(std::istream& in) : in_(&in) {}
  // The bytes [p, p + n) of a mapped file, from just after the header.
  Source(const char* p, std::size_t n) : map_(p), map_size_(n) {}
  ~Source() { ZSTD_freeDCtx(dctx_); }
  void enable_zstd() {
    dctx_ = ZSTD_createDCtx();
    if (in_) zin_.resize(ZSTD_DStreamInSize());
  }
  // Plain mapped bytes: records can be decoded where they lie (view).
  bool viewable() const { return map_ && !dctx_; }

  std::size_t read(char* p, std::size_t n) {
    if (!dctx_) {
      if (map_) {
        const std::size_t got = std::min(n, map_size_ - map_pos_);
        std::memcpy(p, map_ + map_pos_, got);
        map_pos_ += got;
        return got;
      }
      in_->read(p, static_cast<std::streamsize>(n));
      return static_cast<std::size_t>(in_->gcount());
    }
    ZSTD_outBuffer out{p, n, 0};
    while (out.pos < out.size) {
      if (in_pos_ == in_size_ && !refill()) break;
      ZSTD_inBuffer zin{in_ptr_, in_size_, in_pos_};
      std::size_t r = ZSTD_decompressStream(dctx_, &out, &zin);
      in_pos_ = zin.pos;
      if (ZSTD_isError(r)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(r));
    }
    return out.pos;
  }

  // Up to n bytes where they lie in the mapping (viewable() only); `got`
  // says how many there were.
  const char* view(std::size_t n, std::size_t& got) {
    got = std::min(n, map_size_ - map_pos_);
    const char* p = map_ + map_pos_;
    map_pos_ += got;
    return p;
  }

  // True when no byte is left, compressed or not.
  bool at_end() {
    char c;
    return read(&c, 1) == 0;
  }

 private:
  bool refill() {
    if (map_) {  // the whole compressed rest of the mapping at once
      if (map_pos_ == map_size_) return false;
      in_ptr_ = map_ + map_pos_;
      in_size_ = map_size_ - map_pos_;
      map_pos_ = map_size_;
    } else {
      in_->read(zin_.data(), static_cast<std::streamsize>(zin_.size()));
      in_ptr_ = zin_.data();
      in_size_ = static_cast<std::size_t>(in_->gcount());
      if (in_size_ == 0) return false;
    }
    in_pos_ = 0;
    return true;
  }

  std::istream* in_ = nullptr;
  const char* map_ = nullptr;
  std::size_t map_size_ = 0, map_pos_ = 0;
  ZSTD_DCtx* dctx_ = nullptr;
  std::vector<char> zin_;
  const char* in_ptr_ = nullptr;
  std::size_t in_pos_ = 0, in_size_ = 0;
};

std::ifstream open_in(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path + ": " + std::strerror(errno));
  return f;
}

// Records packed but not yet written, for one gathered write: their small
// pieces in one buffer, and references to the tensors its iovecs point into.
// 2 MB: the first batch's packing and the last one's write overlap nothing,
// and smaller batches shorten both (0.88-0.91 of a plain write against
// 0.76-0.86 with 8 MB; bench/RESULTS.md, tenth session).
constexpr std::size_t kGatherBytes = 2 << 20;
constexpr std::size_t kGatherRecords = 4096;

// One thread that runs jobs in the order given, started on first use and
// kept for the writer's life: a thread per batch (std::async) cost a spawn
// and a cold start 26 times per 200 MB file. Jobs queue up, so that the
// thread goes from one batch's write to the next without waiting to be
// woken (two wake-ups a batch on a VM, where one costs ~11 us of CPU and
// more in latency). After a job throws, the ones queued behind it are
// dropped (the file is broken) and the error waits for the next wait().
class WriteHelper {
 public:
  ~WriteHelper() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void run(std::function<void()> job) {
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  // Waits until at most `jobs` jobs are queued or running, and rethrows what
  // one threw (by then none is left: the error and the emptied queue are
  // published together).
  void wait_until_at_most(std::size_t jobs) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return jobs_.size() <= jobs || error_; });
    if (std::exception_ptr e = std::exchange(error_, nullptr)) std::rethrow_exception(e);
  }
  void wait() { wait_until_at_most(0); }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return quit_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // quit, nothing left
      std::function<void()>& job = jobs_.front();  // stays in the queue while it runs: counted as in flight
      lock.unlock();
      std::exception_ptr error;
      try {
        job();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      jobs_.pop_front();
      if (error) {
        error_ = error;
        jobs_.clear();
      }
      cv_.notify_all();
    }
  }
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // the front one is running
  std::exception_ptr error_;
  bool quit_ = false;
};

struct Batch {
  detail::RecordBuffer buf;  // reused: no allocation per record once warm
  std::size_t pending = 0, pending_bytes = 0;
  std::vector<at::Tensor> keepalive;
  std::vector<iovec> pieces;
};

}  // namespace

// --- writer ----------------------------------------------------------------

struct BinaryWriter::Impl {
  int fd = -1;  // the file we opened; -1 when writing to a caller's stream
  // A regular file is written beside its path and renamed over it at close:
  // documents read from the old file alias its mapped bytes, and truncating
  // it under them (load, change, save back to the same path) would fault.
  // The old file lives on, unlinked, for as long as they do.
  std::string partial;
  bool failed = false;  // an I/O error: the partial file is dropped, the old one kept
  std::ostream* out = nullptr;
  std::string name;
  std::unique_ptr<Sink> sink;
  // One batch is packed while the others are written, in order, on a helper
  // thread (the kernel's copy and our encoding overlap, on two cores). Three:
  // a batch packed while the helper still writes the one before waits in
  // the helper's queue, and the helper never sleeps between two writes.
  static constexpr int kBatches = 3;
  Batch batches[kBatches];
  int active = 0;
  WriteHelper helper;  // declared after the batches: destroyed (joined) before them
  std::uint64_t offset = kHeaderSize;  // stream offset of the next record
  std::uint64_t count = 0;
  bool closed = false;

  void start(Compression c) {
    char header[kHeaderSize] = {};
    std::memcpy(header, kMagic, 8);
    std::uint16_t version = kBinaryFormatVersion, flags = c == Compression::Zstd ? kFlagZstd : 0;
    std::memcpy(header + 8, &version, 2);
    std::memcpy(header + 10, &flags, 2);
    sink = std::make_unique<Sink>(fd, out, c, name);
    sink->put_raw(header, kHeaderSize);
    // Uncompressed, a batch goes out as a few large contiguous writes:
    // payloads under kIoChunk are copied into it (see set_reference_min).
    // Compressed, zstd reads every piece where it lies anyway.
    if (c != Compression::Zstd)
      for (auto& b : batches) {
        b.buf.set_reference_min(kIoChunk);
        b.buf.reserve(kGatherBytes + kIoChunk);  // a batch closes past kGatherBytes
      }
  }

  // Packs `doc` as the next record of the active batch, its length first,
  // payloads aligned for its place in the file. Returns the record's size.
  std::uint64_t pack(const Document& doc) {
    if (closed) throw Error("write to " + name + " after close()");
    // Batches queued behind a failed write were dropped unwritten: nothing
    // after them may land in the file (or stream) as if they had.
    if (failed) throw Error("write to " + name + " after a failed write");
    Batch& b = batches[active];
    const auto mark = b.buf.mark();
    const std::size_t kept = b.keepalive.size();
    const std::size_t length_at = b.buf.placeholder_u32();
    const std::uint64_t total = detail::pack_document(b.buf, doc, b.keepalive, offset + 4);
    if (total > 0xFFFFFFFFu) {
      b.buf.rollback(mark);
      b.keepalive.resize(kept);
      throw Error("document '" + doc.id + "' encodes to " + std::to_string(total) +
                  " bytes, over the 4 GiB record limit");
    }
    b.buf.patch_u32(length_at, static_cast<std::uint32_t>(total));
    offset += 4 + total;
    ++count;
    return 4 + total;
  }

  // write(doc): copied into the sink's buffer now, so the caller may change
  // the document's tensors as soon as write returns.
  void write_copied(const Document& doc) {
    Batch& b = batches[active];
    pack(doc);
    b.pieces.clear();
    b.buf.append_iovecs(b.pieces);
    for (const auto& v : b.pieces) sink->put(static_cast<const char*>(v.iov_base), v.iov_len);
    b.buf.clear();
    b.keepalive.clear();
  }

  // write(docs): payloads written by reference, in batches; the documents
  // cannot change before write returns, and every batch is out by then.
  void write_gathered(const Document& doc) {
    const std::uint64_t bytes = pack(doc);
    Batch& b = batches[active];
    ++b.pending;
    b.pending_bytes += bytes;
    if (b.pending_bytes >= kGatherBytes || b.pending == kGatherRecords) flush_gathered(true);
  }

  // Writes the active batch: queued for the helper thread while the next
  // one is packed (`overlap`; this returns once the next batch to pack is
  // out of the helper's hands), or here once those queued before it are out
  // (the last batch of a write(docs): a small array costs no thread hand-off).
  void flush_gathered(bool overlap) {
    Batch& b = batches[active];
    if (b.pending == 0) return wait_in_flight();
    b.pieces.clear();
    b.buf.append_iovecs(b.pieces);
    b.pending = b.pending_bytes = 0;
    auto write = [this, &b] {
      sink->put_gather(b.pieces);
      b.buf.clear();
      b.keepalive.clear();
    };
    if (!overlap) {
      wait_in_flight();
      return write();
    }
    helper.run(write);
    active = (active + 1) % kBatches;
    helper.wait_until_at_most(kBatches - 1);
  }

  void wait_in_flight() { helper.wait(); }  // rethrows the write's error
};

BinaryWriter::BinaryWriter(const std::string& path, Compression c) : impl_(new Impl) {
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists || S_ISREG(st.st_mode)) {
    static std::atomic<unsigned> writers{0};  // two writers of one path in one process get two names
    impl_->partial = path + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(writers++);
    impl_->fd = ::open(impl_->partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (impl_->fd < 0) throw Error("cannot open " + path + " for writing: cannot create " + impl_->partial + ": " + std::strerror(errno));
    if (exists) ::fchmod(impl_->fd, st.st_mode & 07777);  // the replaced file's permissions
  } else {  // a device or a pipe (/dev/stdout): written where it is
    impl_->fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (impl_->fd < 0) throw Error("cannot open " + path + " for writing: " + std::strerror(errno));
  }
  impl_->name = path;
  try {
    impl_->start(c);
  } catch (...) {
    impl_->failed = true;
    throw;
  }
}

BinaryWriter::BinaryWriter(std::ostream& out, Compression c, std::string name) : impl_(new Impl) {
  impl_->out = &out;
  impl_->name = std::move(name);
  impl_->start(c);
}

BinaryWriter::~BinaryWriter() {
  if (impl_ && !impl_->closed && !impl_->failed) {
    try {
      close();
    } catch (...) {
      // A destructor cannot report; callers who care call close() themselves.
    }
  }
  if (impl_ && impl_->fd >= 0) ::close(impl_->fd);
  if (impl_ && !impl_->partial.empty() && (impl_->failed || !impl_->closed)) ::unlink(impl_->partial.c_str());
}

void BinaryWriter::write(const Document& doc) {
  try {
    impl_->write_copied(doc);
  } catch (...) {
    if (impl_->sink->failed()) impl_->failed = true;  // else refused before a byte was written
    throw;
  }
}

void BinaryWriter::write(const DocumentArray& docs) {
  try {
    const auto& all = docs.raw();
    for (std::size_t i = 0; i < all.size(); ++i) {
      detail::prefetch_for_packing(all, i, true);
      impl_->write_gathered(all[i]);
    }
    impl_->flush_gathered(false);
  } catch (...) {
    // Nothing may still point into `docs` once this returns.
    try {
      impl_->wait_in_flight();
    } catch (...) {
    }
    if (impl_->sink->failed()) {
      impl_->failed = true;
      throw;
    }
    // A document refused (over the record limit) loses only itself: the
    // records packed before it still go out, before the error does.
    impl_->flush_gathered(false);
    throw;
  }
}

void BinaryWriter::close() {
  if (impl_->closed) return;
  if (impl_->failed) throw Error("cannot close " + impl_->name + ": an earlier write failed; the file was not replaced");
  impl_->closed = true;
  try {
    char end[12];
    put_u32(end, 0);
    put_u64(end + 4, impl_->count);
    impl_->sink->put(end, sizeof end);
    impl_->sink->finish();
    if (impl_->fd >= 0) {
      const int fd = impl_->fd;
      impl_->fd = -1;
      if (::close(fd) != 0) throw Error("cannot close " + impl_->name + ": " + std::strerror(errno));
    }
    if (!impl_->partial.empty() && ::rename(impl_->partial.c_str(), impl_->name.c_str()) != 0)
      throw Error("cannot replace " + impl_->name + " with " + impl_->partial + ": " + std::strerror(errno));
  } catch (...) {
    impl_->failed = true;
    throw;
  }
}

std::uint64_t BinaryWriter::count() const { return impl_->count; }

// --- reader ----------------------------------------------------------------

namespace {

// One record's `len` bytes as a msgpack object in `zone` (cleared first),
// within the record's limits; returns the bytes the document took. Strings
// and bin payloads are referenced where they lie, not copied into the zone:
// strings are copied once into the document, payloads once into tensors or,
// from a mapped file, not at all.
std::size_t unpack_record(msgpack::zone& zone, const char* bytes, std::uint32_t len, msgpack::object& obj) {
  auto ref = [](msgpack::type::object_type t, std::size_t, void*) {
    return t == msgpack::type::BIN || t == msgpack::type::STR;
  };
  zone.clear();
  std::size_t off = 0;
  obj = msgpack::unpack(zone, bytes, len, off, ref, nullptr, detail::record_limits(len));
  return off;
}

}  // namespace

struct BinaryReader::Impl {
  std::ifstream file;
  std::istream* in = nullptr;
  std::optional<detail::MappedFile> map;
  detail::Arena arena;  // the mapping, for tensors that alias it
  std::string name;
  std::unique_ptr<Source> source;
  Compression compression = Compression::None;
  std::uint16_t version = 0;
  std::uint64_t offset = kHeaderSize;  // of the next record in the (decompressed) stream
  std::int64_t record = 0;
  bool done = false;
  std::vector<char> buf;
  msgpack::zone zone;  // reused across records: one allocation, not one per record

  [[noreturn]] void fail(const std::string& what) {
    std::string suffix = compression == Compression::Zstd ? " (offset in the decompressed stream)" : "";
    throw FormatError(name, record, offset, what + suffix);
  }

  void start() {
    char header[kHeaderSize];
    std::size_t got;
    if (map) {
      got = std::min(kHeaderSize, map->size);
      std::memcpy(header, map->data, got);
    } else {
      in->read(header, kHeaderSize);
      got = static_cast<std::size_t>(in->gcount());
    }
    if (got == 0) throw FormatError(name, -1, 0, "the file is empty: a docarray binary file starts with a 16-byte header");
    if (got < 8 || std::memcmp(header, kMagic, 8) != 0)
      throw FormatError(name, -1, 0, "not a docarray binary file (wrong magic; JSON Lines files end in .jsonl)");
    if (got < kHeaderSize)
      throw FormatError(name, -1, got, "truncated header (" + std::to_string(got) + " of 16 bytes)");
    std::uint16_t flags;
    std::memcpy(&version, header + 8, 2);
    std::memcpy(&flags, header + 10, 2);
    if (version < 1 || version > kBinaryFormatVersion)
      throw FormatError(name, -1, 8,
                        "format version " + std::to_string(version) + " is not supported (this docflow reads versions 1 to " +
                            std::to_string(kBinaryFormatVersion) + "; a newer docflow wrote it?)");
    if (flags & ~kFlagZstd) throw FormatError(name, -1, 10, "unknown flags " + std::to_string(flags));
    if (map) {
      source = std::make_unique<Source>(map->data + kHeaderSize, map->size - kHeaderSize);
      arena = detail::Arena{map->data, map->data + map->size, map->storage};
    } else {
      source = std::make_unique<Source>(*in);
    }
    if (flags & kFlagZstd) {
      compression = Compression::Zstd;
      source->enable_zstd();
    }
  }

  // Reads exactly n bytes into p, growing nothing: a short read is truncation.
  void read_exact(char* p, std::size_t n, const char* what) {
    std::size_t got;
    try {
      got = source->read(p, n);
    } catch (const std::runtime_error& e) {
      fail(std::string("corrupt compressed data: ") + e.what());
    }
    if (got < n)
      fail(std::string("file is truncated: ") + what + " needs " + std::to_string(n) + " bytes, only " +
           std::to_string(got) + " left");
  }

  [[noreturn]] void truncated_record(std::uint32_t len, std::size_t have) {
    fail("file is truncated: the record needs " + std::to_string(len) + " bytes, only " + std::to_string(have) +
         " left");
  }

  // The record's `len` bytes: where they lie in a mapped file, or read into
  // `buf`, which grows as bytes arrive so that a corrupt length cannot make
  // us allocate gigabytes up front.
  const char* record_bytes(std::uint32_t len) {
    if (source->viewable()) {
      std::size_t have;
      const char* p = source->view(len, have);
      if (have < len) truncated_record(len, have);
      return p;
    }
    buf.clear();
    std::size_t have = 0;
    while (have < len) {
      std::size_t step = std::min<std::size_t>(len - have, std::max<std::size_t>(have, kIoChunk));
      buf.resize(have + step);
      std::size_t got;
      try {
        got = source->read(buf.data() + have, step);
      } catch (const std::runtime_error& e) {
        fail(std::string("corrupt compressed data: ") + e.what());
      }
      have += got;
      if (got < step) truncated_record(len, have);
    }
    return buf.data();
  }

  std::optional<std::uint64_t> count_hint() const {
    if (!map || compression != Compression::None || map->size < kHeaderSize + 12) return std::nullopt;
    if (get_u32(map->data + map->size - 12) != 0) return std::nullopt;  // damaged: the records will say how
    // A record takes at least 5 bytes (length and a one-byte map): a hostile
    // count cannot make anyone reserve more than the file could hold.
    return std::min<std::uint64_t>(get_u64(map->data + map->size - 8), (map->size - kHeaderSize) / 5);
  }

  // Every remaining record of a mapped, uncompressed file decoded on up to
  // `threads` threads. This thread walks the record lengths (no decoding)
  // and makes each record's slot at the end of `out`, publishing them in
  // runs of kRecordsPerRun; the helpers decode runs as soon as they are
  // published, and this thread joins them once the walk is over. Returns
  // false, with `out` and the reader as they were, where that does not
  // apply or anything at all is off (a record length past the end, more
  // records than the end marker declared, a record that does not decode,
  // an end marker that disagrees, bytes after it): the caller then reads
  // one record at a time, which names the first fault exactly as it always
  // has.
  bool append_all_in_parallel(DocumentArray& out, unsigned threads) {
    if (done || !source->viewable() || threads < 2) return false;
    const char* const base = map->data;
    const std::size_t size = map->size;
    // The end marker's count, bounded by what the file can hold: the slots
    // and places are reserved for it, so that neither moves while helpers
    // read them; a file with more records goes the sequential way.
    const std::optional<std::uint64_t> hint = count_hint();
    if (!hint || *hint < static_cast<std::uint64_t>(record)) return false;
    const std::size_t expected = static_cast<std::size_t>(*hint - static_cast<std::uint64_t>(record));
    threads = static_cast<unsigned>(std::min<std::size_t>(threads, expected / kRecordsPerThread));
    if (threads < 2) return false;

    std::vector<Document>& docs = out.raw();
    const std::size_t first = docs.size();
    std::vector<std::pair<std::uint64_t, std::uint32_t>> records;  // (offset of the bytes, length)
    try {
      docs.reserve(first + expected);
      records.reserve(expected);
    } catch (const std::bad_alloc&) {  // an end marker that lies about a large file
      return false;
    }
    Document* const slots = docs.data() + first;  // stable: nothing grows past the reservation
    advise_huge_pages(slots, expected * sizeof(Document));
    const auto* const places = records.data();

    std::atomic<std::size_t> published{0};  // slots and places [0, published) are ready
    std::atomic<bool> walked{false}, failed{false};
    std::atomic<std::size_t> next_run{0};
    // Helper t first reads one byte of every page of the t-th of `threads`
    // equal parts of the records, while this thread walks the first part:
    // the first touch of a page of the mapping, even one MAP_POPULATE filled
    // in, is where the walk spent its time on a VM measured here (about
    // 1.5 us a page, the hypervisor's page tables filled in page by page, we
    // think): the walk of a 100k x 512-float file alone took 70-78 ms, 43-54
    // with a second thread touching half of it ahead, and the whole read
    // 90-98 -> 63-67 ms (bench/RESULTS.md, 2026-12-07). Elsewhere it costs a
    // helper a few milliseconds it would spend waiting for the first run.
    const std::size_t span = size - offset;
    auto touch_part = [&](unsigned t) {
      const std::size_t page = 4096;
      const std::size_t begin = offset + span / threads * t, end = t + 1 == threads ? size : offset + span / threads * (t + 1);
      unsigned char sum = 0;
      for (std::size_t at = begin; at < end && !failed.load(std::memory_order_relaxed); at += page)
        sum = static_cast<unsigned char>(sum + static_cast<unsigned char>(*static_cast<const volatile char*>(base + at)));
      return sum;
    };
    std::atomic<unsigned> touched{0};  // keeps the reads; no one looks at it
    auto decode_runs = [&] {
      try {
        msgpack::zone own_zone;
        for (;;) {
          const std::size_t lo = next_run.fetch_add(1) * kRecordsPerRun;
          std::size_t ready;
          // The walk runs about four times as fast as a decoder: a helper
          // waits only for the first run.
          while ((ready = published.load(std::memory_order_acquire)) < lo + kRecordsPerRun &&
                 !walked.load(std::memory_order_acquire) && !failed.load(std::memory_order_relaxed))
            std::this_thread::yield();
          ready = published.load(std::memory_order_acquire);
          if (failed.load(std::memory_order_relaxed) || lo >= ready) return;
          const std::size_t hi = std::min(ready, lo + kRecordsPerRun);
          for (std::size_t i = lo; i < hi; ++i) {
            const auto [where, len] = places[i];
            if (detail::decode_record_directly(base + where, len, slots[i], &arena)) continue;
            slots[i] = Document(std::string());
            msgpack::object obj;
            if (unpack_record(own_zone, base + where, len, obj) != len) throw Error("trailing bytes");
            detail::unpack_document_into(obj, slots[i], 0, &arena);
          }
        }
      } catch (...) {
        failed = true;  // which record and why: the sequential read says
      }
    };
    std::vector<std::thread> helpers;
    try {
      for (unsigned t = 1; t < threads; ++t)
        helpers.emplace_back([&, t] {
          touched.fetch_add(touch_part(t), std::memory_order_relaxed);
          decode_runs();
        });
    } catch (...) {  // no thread to be had: what started still joins below
      failed = true;
    }

    std::uint64_t at = offset;
    bool walk_ok = false;
    try {
      for (;;) {
        if (failed.load(std::memory_order_relaxed) || size - at < 4) break;
        const std::uint32_t len = get_u32(base + at);
        if (len == 0) {
          walk_ok = size - at == 12 && get_u64(base + at + 4) == static_cast<std::uint64_t>(record) + records.size();
          break;
        }
        if (size - at - 4 < len || records.size() == expected) break;
        docs.emplace_back(std::string());  // the slot first: a place is published only with its slot
        records.emplace_back(at + 4, len);
        at += 4 + std::uint64_t{len};
        if (records.size() % kRecordsPerRun == 0) published.store(records.size(), std::memory_order_release);
      }
    } catch (...) {  // out of memory making a slot
    }
    if (!walk_ok) failed = true;
    published.store(records.size(), std::memory_order_release);
    walked.store(true, std::memory_order_release);
    decode_runs();
    for (auto& h : helpers) h.join();
    if (failed) {
      docs.erase(docs.begin() + static_cast<std::ptrdiff_t>(first), docs.end());
      return false;
    }
    record += static_cast<std::int64_t>(records.size());
    offset = at + 12;
    done = true;
    return true;
  }

  bool next(Document& doc) {
    return next_record([&](const char* bytes, std::uint32_t len, const detail::Arena* a) {
      Document fresh{std::string()};
      decode_into(bytes, len, fresh, a);
      doc = std::move(fresh);
    });
  }

  // Decodes into a slot constructed in place at the array's end: no move of
  // a 584-byte Document per record.
  bool append_next(DocumentArray& out) {
    return next_record([&](const char* bytes, std::uint32_t len, const detail::Arena* a) {
      std::vector<Document>& docs = out.raw();
      docs.emplace_back(std::string());
      try {
        decode_into(bytes, len, docs.back(), a);
      } catch (...) {
        docs.pop_back();
        throw;
      }
    });
  }

  // The record's bytes into `fresh`: straight from the bytes where the
  // record is a plain one, else through msgpack-c's object tree, which also
  // names every fault.
  void decode_into(const char* bytes, std::uint32_t len, Document& fresh, const detail::Arena* a) {
    if (detail::decode_record_directly(bytes, len, fresh, a)) return;
    fresh = Document(std::string());
    msgpack::object obj;
    const std::size_t off = unpack_record(zone, bytes, len, obj);
    if (off != len) fail("corrupt record: " + std::to_string(len - off) + " bytes left after the document");
    detail::unpack_document_into(obj, fresh, 0, a);
  }

  template <typename Decode>
  bool next_record(const Decode& decode) {
    if (done) return false;
    char len_bytes[4];
    read_exact(len_bytes, 4, "a record length");
    std::uint32_t len = get_u32(len_bytes);
    if (len == 0) {
      char count_bytes[8];
      read_exact(count_bytes, 8, "the end marker");
      std::uint64_t count = get_u64(count_bytes);
      if (count != static_cast<std::uint64_t>(record))
        fail("end marker says " + std::to_string(count) + " records, " + std::to_string(record) + " were read");
      bool trailing;
      try {
        trailing = !source->at_end();
      } catch (const std::runtime_error& e) {
        fail(std::string("corrupt compressed data after the end marker: ") + e.what());
      }
      if (trailing) fail("unexpected bytes after the end marker");
      done = true;
      return false;
    }
    const char* bytes = record_bytes(len);
    try {
      decode(bytes, len, source->viewable() ? &arena : nullptr);
    } catch (const FormatError&) {
      throw;
    } catch (const Error& e) {
      fail(std::string("corrupt record: ") + e.what());
    } catch (const msgpack::depth_size_overflow&) {
      fail("corrupt record: nested deeper than " + limit_hint("depth"));
    } catch (const msgpack::size_overflow& e) {
      fail("corrupt record: a container or string declares more elements than the record's " +
           std::to_string(len) + " bytes can hold (" + e.what() + ")");
    } catch (const std::exception& e) {
      fail(std::string("corrupt record: msgpack: ") + e.what());
    }
    offset += 4 + len;
    ++record;
    return true;
  }
};

BinaryReader::BinaryReader(const std::string& path) : impl_(new Impl) {
  impl_->name = path;
  impl_->map = detail::map_file(path);
  if (!impl_->map) {  // not a regular file (a pipe), or empty: read as a stream
    impl_->file = open_in(path);
    impl_->in = &impl_->file;
  }
  impl_->start();
}

BinaryReader::BinaryReader(std::istream& in, std::string name) : impl_(new Impl) {
  impl_->in = &in;
  impl_->name = std::move(name);
  impl_->start();
}

BinaryReader::~BinaryReader() = default;
bool BinaryReader::next(Document& doc) { return impl_->next(doc); }
bool BinaryReader::append_next(DocumentArray& docs) { return impl_->append_next(docs); }

std::size_t BinaryReader::append_all(DocumentArray& docs) {
  const std::size_t before = docs.size();
  if (!impl_->append_all_in_parallel(docs, std::min(std::thread::hardware_concurrency(), 8u))) {
    while (impl_->append_next(docs)) {
    }
  }
  return docs.size() - before;
}
Compression BinaryReader::compression() const { return impl_->compression; }
std::uint16_t BinaryReader::version() const { return impl_->version; }

std::optional<std::uint64_t> BinaryReader::count_hint() const { return impl_->count_hint(); }

void save_binary(const DocumentArray& docs, const std::string& path, Compression compression) {
  BinaryWriter w(path, compression);
  w.write(docs);
  w.close();
}

void reserve_for(DocumentArray& docs, std::optional<std::uint64_t> count) {
  if (!count) return;
  try {
    docs.reserve(docs.size() + static_cast<std::size_t>(*count));
    const std::vector<Document>& slots = static_cast<const DocumentArray&>(docs).raw();  // not marking its index stale
    advise_huge_pages(slots.data() + slots.size(), static_cast<std::size_t>(*count) * sizeof(Document));
  } catch (const std::bad_alloc&) {
    // An end marker that lies about a large file (the count is bounded by
    // the file's size, a Document is 584 bytes): grow as records come; the
    // marker's count is checked against them at the end.
  }
}

DocumentArray load_binary(const std::string& path) {
  BinaryReader r(path);
  DocumentArray out;
  reserve_for(out, r.count_hint());
  r.append_all(out);
  return out;
}

bool is_binary_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8];
  return f.read(magic, 8) && std::memcmp(magic, kMagic, 8) == 0;
}

}  // namespace docarray
