#include "docarray/binary_io.hpp"

#include <zstd.h>

#include <array>
#include <cstring>
#include <fstream>

#include "docarray/error.hpp"
#include "docarray/limits.hpp"
#include "msgpack_codec.hpp"

namespace docarray {
namespace {

constexpr char kMagic[8] = {'D', 'F', 'D', 'O', 'C', 'S', '\r', '\n'};
constexpr std::size_t kHeaderSize = 16;
constexpr std::uint16_t kFlagZstd = 1;
constexpr std::size_t kIoChunk = 1 << 20;

void put_u32(char* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
void put_u64(char* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
std::uint32_t get_u32(const char* p) { std::uint32_t v; std::memcpy(&v, p, 4); return v; }
std::uint64_t get_u64(const char* p) { std::uint64_t v; std::memcpy(&v, p, 8); return v; }

// Where bytes go after the header: straight to the stream, or through zstd.
class Sink {
 public:
  Sink(std::ostream& out, Compression c, std::string name) : out_(out), name_(std::move(name)) {
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

  void finish() {
    if (cctx_) compress(nullptr, 0, ZSTD_e_end);
    flush_buffer();
    out_.flush();
    if (!out_) throw Error("cannot write " + name_ + ": flush failed (disk full?)");
  }

 private:
  void raw_write(const char* p, std::size_t n) {
    out_.write(p, static_cast<std::streamsize>(n));
    if (!out_) throw Error("cannot write " + name_ + " (disk full?)");
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
      if (ZSTD_isError(left)) throw Error("zstd compression of " + name_ + " failed: " + ZSTD_getErrorName(left));
      raw_write(zbuf_.data(), out.pos);
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) break;
    }
  }

  std::ostream& out_;
  std::string name_;
  std::vector<char> buf_;
  ZSTD_CCtx* cctx_ = nullptr;
  std::vector<char> zbuf_;
};

// Where bytes come from after the header. `read` returns fewer bytes than
// asked only at the end of the data.
class Source {
 public:
  Source(std::istream& in, std::string name) : in_(in), name_(std::move(name)) {}
  ~Source() { ZSTD_freeDCtx(dctx_); }
  void enable_zstd() {
    dctx_ = ZSTD_createDCtx();
    zin_.resize(ZSTD_DStreamInSize());
  }
  bool compressed() const { return dctx_ != nullptr; }

  std::size_t read(char* p, std::size_t n) {
    if (!dctx_) {
      in_.read(p, static_cast<std::streamsize>(n));
      return static_cast<std::size_t>(in_.gcount());
    }
    ZSTD_outBuffer out{p, n, 0};
    while (out.pos < out.size) {
      if (in_pos_ == in_size_) {
        in_.read(zin_.data(), static_cast<std::streamsize>(zin_.size()));
        in_size_ = static_cast<std::size_t>(in_.gcount());
        in_pos_ = 0;
        if (in_size_ == 0) break;
      }
      ZSTD_inBuffer zin{zin_.data(), in_size_, in_pos_};
      std::size_t r = ZSTD_decompressStream(dctx_, &out, &zin);
      in_pos_ = zin.pos;
      if (ZSTD_isError(r)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(r));
    }
    return out.pos;
  }

  // True when no byte is left, compressed or not.
  bool at_end() {
    char c;
    return read(&c, 1) == 0;
  }

 private:
  std::istream& in_;
  std::string name_;
  ZSTD_DCtx* dctx_ = nullptr;
  std::vector<char> zin_;
  std::size_t in_pos_ = 0, in_size_ = 0;
};

std::ofstream open_out(const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error("cannot open " + path + " for writing: " + std::strerror(errno));
  return f;
}
std::ifstream open_in(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path + ": " + std::strerror(errno));
  return f;
}

}  // namespace

// --- writer ----------------------------------------------------------------

struct BinaryWriter::Impl {
  std::ofstream file;  // used when we own the stream
  std::ostream* out;
  std::string name;
  std::unique_ptr<Sink> sink;
  msgpack::vrefbuffer vbuf{64, 64 * 1024};  // payloads >= 64 bytes are referenced, not copied
  std::vector<at::Tensor> keepalive;
  std::uint64_t count = 0;
  bool closed = false;

  void start(Compression c) {
    char header[kHeaderSize] = {};
    std::memcpy(header, kMagic, 8);
    std::uint16_t version = kBinaryFormatVersion, flags = c == Compression::Zstd ? kFlagZstd : 0;
    std::memcpy(header + 8, &version, 2);
    std::memcpy(header + 10, &flags, 2);
    out->write(header, kHeaderSize);
    if (!*out) throw Error("cannot write " + name);
    sink = std::make_unique<Sink>(*out, c, name);
  }
};

BinaryWriter::BinaryWriter(const std::string& path, Compression c) : impl_(new Impl) {
  impl_->file = open_out(path);
  impl_->out = &impl_->file;
  impl_->name = path;
  impl_->start(c);
}

BinaryWriter::BinaryWriter(std::ostream& out, Compression c, std::string name) : impl_(new Impl) {
  impl_->out = &out;
  impl_->name = std::move(name);
  impl_->start(c);
}

BinaryWriter::~BinaryWriter() {
  if (impl_ && !impl_->closed) {
    try {
      close();
    } catch (...) {
      // A destructor cannot report; callers who care call close() themselves.
    }
  }
}

void BinaryWriter::write(const Document& doc) {
  if (impl_->closed) throw Error("write to " + impl_->name + " after close()");
  auto& im = *impl_;
  im.vbuf.clear();
  im.keepalive.clear();
  detail::pack_document(im.vbuf, doc, im.keepalive);
  const iovec* iov = im.vbuf.vector();
  std::size_t n = im.vbuf.vector_size(), total = 0;
  for (std::size_t i = 0; i < n; ++i) total += iov[i].iov_len;
  if (total > 0xFFFFFFFFu)
    throw Error("document '" + doc.id + "' encodes to " + std::to_string(total) +
                " bytes, over the 4 GiB record limit");
  char len[4];
  put_u32(len, static_cast<std::uint32_t>(total));
  im.sink->put(len, 4);
  for (std::size_t i = 0; i < n; ++i) im.sink->put(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  ++im.count;
}

void BinaryWriter::write(const DocumentArray& docs) {
  for (const auto& d : docs) write(d);
}

void BinaryWriter::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  char end[12];
  put_u32(end, 0);
  put_u64(end + 4, impl_->count);
  impl_->sink->put(end, sizeof end);
  impl_->sink->finish();
  if (impl_->file.is_open()) {
    impl_->file.close();
    if (!impl_->file) throw Error("cannot close " + impl_->name);
  }
}

std::uint64_t BinaryWriter::count() const { return impl_->count; }

// --- reader ----------------------------------------------------------------

struct BinaryReader::Impl {
  std::ifstream file;
  std::istream* in;
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
    in->read(header, kHeaderSize);
    std::size_t got = static_cast<std::size_t>(in->gcount());
    if (got == 0) throw FormatError(name, -1, 0, "the file is empty: a docarray binary file starts with a 16-byte header");
    if (got < 8 || std::memcmp(header, kMagic, 8) != 0)
      throw FormatError(name, -1, 0, "not a docarray binary file (wrong magic; JSON Lines files end in .jsonl)");
    if (got < kHeaderSize)
      throw FormatError(name, -1, got, "truncated header (" + std::to_string(got) + " of 16 bytes)");
    std::uint16_t flags;
    std::memcpy(&version, header + 8, 2);
    std::memcpy(&flags, header + 10, 2);
    if (version != kBinaryFormatVersion)
      throw FormatError(name, -1, 8,
                        "format version " + std::to_string(version) + " is not supported (this docflow reads version " +
                            std::to_string(kBinaryFormatVersion) + ")");
    if (flags & ~kFlagZstd) throw FormatError(name, -1, 10, "unknown flags " + std::to_string(flags));
    source = std::make_unique<Source>(*in, name);
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

  bool next(Document& doc) {
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
    // Grow the buffer as bytes arrive, so that a corrupt length cannot make
    // us allocate gigabytes up front.
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
      if (got < step)
        fail("file is truncated: the record needs " + std::to_string(len) + " bytes, only " +
             std::to_string(have) + " left");
    }
    try {
      std::size_t off = 0;
      // Referencing bin payloads avoids a copy; they are copied once into tensors.
      auto ref = [](msgpack::type::object_type t, std::size_t, void*) { return t == msgpack::type::BIN; };
      zone.clear();
      msgpack::object obj = msgpack::unpack(zone, buf.data(), len, off, ref, nullptr, detail::record_limits(len));
      if (off != len)
        fail("corrupt record: " + std::to_string(len - off) + " bytes left after the document");
      doc = detail::unpack_document(obj);
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
  impl_->file = open_in(path);
  impl_->in = &impl_->file;
  impl_->name = path;
  impl_->start();
}

BinaryReader::BinaryReader(std::istream& in, std::string name) : impl_(new Impl) {
  impl_->in = &in;
  impl_->name = std::move(name);
  impl_->start();
}

BinaryReader::~BinaryReader() = default;
bool BinaryReader::next(Document& doc) { return impl_->next(doc); }
Compression BinaryReader::compression() const { return impl_->compression; }
std::uint16_t BinaryReader::version() const { return impl_->version; }

void save_binary(const DocumentArray& docs, const std::string& path, Compression compression) {
  BinaryWriter w(path, compression);
  w.write(docs);
  w.close();
}

DocumentArray load_binary(const std::string& path) {
  BinaryReader r(path);
  DocumentArray out;
  Document d{std::string()};
  while (r.next(d)) out.append(std::move(d));
  return out;
}

bool is_binary_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8];
  return f.read(magic, 8) && std::memcmp(magic, kMagic, 8) == 0;
}

}  // namespace docarray
