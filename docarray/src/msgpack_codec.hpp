#pragma once
// Document <-> msgpack, the record format of binary document files.
// Internal to docarray: the file layout lives in binary_io.cpp.
#include <msgpack.hpp>

#include <c10/core/Storage.h>

#include <sys/uio.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "docarray/document.hpp"

namespace docarray::detail {

// Tensor payloads of at least this many bytes start on a multiple of
// kPayloadAlignment in a version-2 file (a "pad" bin before "data" in the
// tensor's map), so that readers can alias them where the file is mapped.
// 64: a cache line, and the alignment SIMD loads and BLAS like best.
constexpr std::size_t kPayloadAlignment = 64;
constexpr std::size_t kAlignedPayloadMin = 64;

// Packs `doc` as a map of its set fields (a network message's document:
// no padding). Tensor bytes are appended by reference (vrefbuffer), so the
// tensors they point into are pushed onto `keepalive` and must outlive the
// buffer's use.
void pack_document(msgpack::vrefbuffer& buf, const Document& doc, std::vector<at::Tensor>& keepalive);

// Where the file writer packs records: small pieces (headers, strings)
// copied into one contiguous run, payloads of reference_min() bytes or more
// referenced where they lie. Cheaper per piece than vrefbuffer, and a whole
// batch of records shares one buffer. The pointers that iovecs() returns
// stay valid until the next write or clear().
class RecordBuffer {
 public:
  // Payloads below `bytes` are copied in too, so that a batch leaves as one
  // contiguous write rather than an iovec segment per 2 KB embedding; the
  // copy is done by the thread that packs while another writes. At least
  // kAlignedPayloadMin. (Measured with reserve() below: bench/RESULTS.md,
  // 2026-12-04; most of that gain was the reservation.)
  void set_reference_min(std::size_t bytes) { reference_min_ = std::max(bytes, kAlignedPayloadMin); }
  std::size_t reference_min() const { return reference_min_; }
  // Room for `bytes` without growing (each growth copies what is there).
  void reserve(std::size_t bytes) {
    if (capacity_ < bytes) grow(bytes - size_);
  }

  void write(const char* p, std::size_t n) {
    if (n >= reference_min_) {
      segments_.push_back({p, 0, n});
      return;
    }
    copy(p, n);
  }
  // Copied whatever its size: `p` is about to change.
  void copy(const char* p, std::size_t n) {
    if (segments_.empty() || segments_.back().external) segments_.push_back({nullptr, size_, 0});
    if (capacity_ - size_ < n) grow(n);
    char* d = data_.get() + size_;
    if (n >= kAlignedPayloadMin) {
      std::memcpy(d, p, n);
    } else {
      // msgpack writes a header of 1-9 bytes before every value: a plain
      // loop beats a memcpy call at these sizes.
      for (std::size_t i = 0; i < n; ++i) d[i] = p[i];
    }
    size_ += n;
    segments_.back().length += n;
  }
  // Room for a u32 to be filled in later (a record's length), as an offset.
  std::size_t placeholder_u32() {
    static constexpr char zero[4] = {};
    write(zero, 4);
    return size_ - 4;
  }
  void patch_u32(std::size_t at, std::uint32_t v) { std::memcpy(data_.get() + at, &v, 4); }
  void append_iovecs(std::vector<iovec>& out) const {
    for (const auto& s : segments_)
      out.push_back({const_cast<char*>(s.external ? s.external : data_.get() + s.begin), s.length});
  }
  void clear() {
    size_ = 0;
    segments_.clear();
  }
  // Undoing a record that was refused after it was packed.
  struct Mark {
    std::size_t bytes, segments, last_length;
  };
  Mark mark() const { return {size_, segments_.size(), segments_.empty() ? 0 : segments_.back().length}; }
  void rollback(const Mark& m) {
    size_ = m.bytes;
    segments_.resize(m.segments);
    if (!segments_.empty()) segments_.back().length = m.last_length;
  }

 private:
  void grow(std::size_t n) {
    const std::size_t cap = std::max<std::size_t>({capacity_ * 2, size_ + n, 64 << 10});
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (size_) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = cap;
  }
  struct Segment {
    const char* external;  // nullptr: data_[begin, begin + length)
    std::size_t begin, length;
  };
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0, capacity_ = 0;
  std::size_t reference_min_ = kAlignedPayloadMin;
  std::vector<Segment> segments_;
};

// The same as a file record: `aligned_at` is the stream offset where the
// record's first byte will land, and payloads are padded to
// kPayloadAlignment from there. Returns the bytes appended.
std::uint64_t pack_document(RecordBuffer& buf, const Document& doc, std::vector<at::Tensor>& keepalive,
                            std::uint64_t aligned_at);

// Packing many documents is bound by memory latency more than by bandwidth:
// a Document is ~600 bytes of fields, its tensors' TensorImpls lie elsewhere
// on the heap and their payloads elsewhere again, three dependent misses per
// document. Called before packing docs[i], this touches what is packed a few
// documents ahead: the fields of docs[i + 8], the TensorImpls of docs[i + 4]
// and, where `payloads` (the file writer copies them; a network message
// references them), the first 4 KB of docs[i + 2]'s. Packing 100k 512-float
// embeddings into a file's batches: 36 -> 18-22 ms (bench/RESULTS.md,
// 2026-12-07).
inline void prefetch_for_packing(const std::vector<Document>& docs, std::size_t i, bool payloads) {
  const std::size_t n = docs.size();
  if (i + 8 < n) {
    const char* d = reinterpret_cast<const char*>(&docs[i + 8]);
    for (std::size_t line = 0; line < sizeof(Document); line += 64) __builtin_prefetch(d + line);
  }
  if (i + 4 < n) {
    const Document& d = docs[i + 4];
    if (d.embedding.defined()) __builtin_prefetch(d.embedding.unsafeGetTensorImpl());
    if (d.tensor.defined()) __builtin_prefetch(d.tensor.unsafeGetTensorImpl());
  }
  if (payloads && i + 2 < n) {
    for (const at::Tensor* t : {&docs[i + 2].embedding, &docs[i + 2].tensor}) {
      if (!t->defined() || !t->has_storage() || !t->is_cpu()) continue;
      const char* p = static_cast<const char*>(t->data_ptr());
      const std::size_t bytes = std::min<std::size_t>(t->numel() * t->element_size(), 4096);
      for (std::size_t line = 0; line < bytes; line += 64) __builtin_prefetch(p + line);
    }
  }
}

// Bytes that outlive the documents decoded from them (a mapped file): a
// tensor whose payload lies inside, at an offset its element size divides,
// aliases the storage instead of copying.
struct Arena {
  const char* begin = nullptr;
  const char* end = nullptr;
  c10::Storage storage;  // whose data starts at `begin`
};

// Decodes one record. Throws docarray::Error naming the field at fault.
// `depth` is the document's nesting (0 for a record's top document), checked
// against limits().depth.
Document unpack_document(const msgpack::object& obj, std::uint32_t depth = 0, const Arena* arena = nullptr);
// The same into `fresh`, a document just constructed (no field set): bulk
// readers decode straight into the array's slot instead of moving it there.
void unpack_document_into(const msgpack::object& obj, Document& fresh, std::uint32_t depth = 0,
                          const Arena* arena = nullptr);

// A tag value (JSON-like) on its own: the envelope of a network message
// carries its parameters this way.
void pack_tag_value(msgpack::vrefbuffer& buf, const Value& v);
Value unpack_tag_value(const msgpack::object& o, const std::string& field, std::uint32_t depth = 0);

// The limits msgpack-c's unpacker checks while it builds a record of `len`
// bytes: no container can declare more elements than the record has bytes
// (msgpack-c allocates the declared count before it reads the elements),
// and the nesting stays within what unpack_document accepts.
msgpack::unpack_limit record_limits(std::size_t len);

}  // namespace docarray::detail
