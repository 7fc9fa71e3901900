#include "direct_decoder.hpp"

#include <c10/core/ScalarType.h>
#include <c10/util/SmallVector.h>
#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "docarray/dtype.hpp"
#include "docarray/limits.hpp"
#include "docarray/storage_view.hpp"
#include "docarray/utf8.hpp"

namespace docarray::detail {
namespace {

// A cursor over one record's bytes. Every read checks the bytes left and
// answers false where the general decoder might see anything but a
// well-formed value of the kind expected; it never throws.
class Cursor {
 public:
  Cursor(const char* p, std::size_t len)
      : p_(reinterpret_cast<const unsigned char*>(p)), end_(p_ + len), record_len_(len) {}
  bool at_end() const { return p_ == end_; }
  unsigned char peek() const { return *p_; }
  bool empty() const { return p_ == end_; }
  void skip_byte() { ++p_; }
  // The most elements msgpack-c's unpacker lets an array of this record
  // declare (record_limits); the general path throws beyond it.
  std::size_t array_limit() const { return record_len_ / 2 + 1; }

  // msgpack's map and array headers: a fix form (up to 15 elements in the
  // low bits) and 16- and 32-bit counts after the type byte.
  bool map_header(std::uint32_t& n) { return container_header(0x80, 0xde, n); }
  bool array_header(std::uint32_t& n) { return container_header(0x90, 0xdc, n); }
  // A string's bytes, as they lie (not checked for UTF-8 here).
  bool str(std::string_view& s) {
    if (empty()) return false;
    const unsigned char b = *p_;
    std::uint32_t n;
    if ((b & 0xe0) == 0xa0) { n = b & 0x1f; ++p_; }
    else if (b == 0xd9) { if (!sized(1, n)) return false; }
    else if (b == 0xda) { if (!sized(2, n)) return false; }
    else if (b == 0xdb) { if (!sized(4, n)) return false; }
    else return false;
    return take(n, s);
  }
  bool bin(std::string_view& s) {
    if (empty()) return false;
    std::uint32_t n;
    switch (*p_) {
      case 0xc4: if (!sized(1, n)) return false; break;
      case 0xc5: if (!sized(2, n)) return false; break;
      case 0xc6: if (!sized(4, n)) return false; break;
      default: return false;
    }
    return take(n, s);
  }
  // Any integer msgpack can hold that fits int64 (the general decoder
  // refuses larger ones).
  bool integer(std::int64_t& v) {
    if (empty()) return false;
    const unsigned char b = *p_;
    if (b <= 0x7f) { v = b; ++p_; return true; }
    if (b >= 0xe0) { v = static_cast<std::int8_t>(b); ++p_; return true; }
    std::uint64_t u;
    switch (b) {
      case 0xcc: if (!big_endian(1, u)) return false; v = static_cast<std::int64_t>(u); return true;
      case 0xcd: if (!big_endian(2, u)) return false; v = static_cast<std::int64_t>(u); return true;
      case 0xce: if (!big_endian(4, u)) return false; v = static_cast<std::int64_t>(u); return true;
      case 0xcf:
        if (!big_endian(8, u) || u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
        v = static_cast<std::int64_t>(u);
        return true;
      case 0xd0: if (!big_endian(1, u)) return false; v = static_cast<std::int8_t>(u); return true;
      case 0xd1: if (!big_endian(2, u)) return false; v = static_cast<std::int16_t>(u); return true;
      case 0xd2: if (!big_endian(4, u)) return false; v = static_cast<std::int32_t>(u); return true;
      case 0xd3: if (!big_endian(8, u)) return false; v = static_cast<std::int64_t>(u); return true;
      default: return false;
    }
  }
  bool is_float() const { return !empty() && (*p_ == 0xca || *p_ == 0xcb); }
  bool is_str() const { return !empty() && ((*p_ & 0xe0) == 0xa0 || (*p_ >= 0xd9 && *p_ <= 0xdb)); }
  bool floating(double& d) {
    if (empty()) return false;
    std::uint64_t u;
    if (*p_ == 0xca) {
      if (!big_endian(4, u)) return false;
      const auto bits = static_cast<std::uint32_t>(u);
      float f;
      std::memcpy(&f, &bits, 4);
      d = f;
      return true;
    }
    if (*p_ == 0xcb) {
      if (!big_endian(8, u)) return false;
      std::memcpy(&d, &u, 8);
      return true;
    }
    return false;
  }
  // A number as the general decoder's get_double reads it.
  bool number(double& d) {
    if (is_float()) return floating(d);
    std::int64_t i;
    if (!integer(i)) return false;
    d = static_cast<double>(i);
    return true;
  }

 private:
  bool container_header(unsigned char fix, unsigned char count16, std::uint32_t& n) {
    if (empty()) return false;
    const unsigned char b = *p_;
    if ((b & 0xf0) == fix) { n = b & 0x0f; ++p_; return true; }
    if (b == count16) return sized(2, n);
    if (b == count16 + 1) return sized(4, n);
    return false;
  }
  // The type byte, then an n-byte big-endian length or value.
  bool big_endian(int n, std::uint64_t& v) {
    if (end_ - p_ < 1 + n) return false;
    v = 0;
    for (int i = 1; i <= n; ++i) v = v << 8 | p_[i];
    p_ += 1 + n;
    return true;
  }
  bool sized(int n, std::uint32_t& out) {
    std::uint64_t v;
    if (!big_endian(n, v)) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
  }
  bool take(std::uint32_t n, std::string_view& s) {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  const unsigned char* p_;
  const unsigned char* end_;
  std::size_t record_len_;
};

bool text(Cursor& c, std::string& out) {
  std::string_view s;
  if (!c.str(s) || invalid_utf8_at(s) != std::string_view::npos) return false;
  out.assign(s.data(), s.size());
  return true;
}

bool tensor(Cursor& c, at::Tensor& out, const Arena* arena) {
  std::uint32_t n;
  if (!c.map_header(n)) return false;
  std::string_view dtype, data;
  bool have_dtype = false, have_shape = false, have_data = false;
  c10::SmallVector<std::int64_t, 6> sizes;
  std::uint64_t numel = 1;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!c.str(key)) return false;
    if (key == "dtype") {
      if (!c.str(dtype)) return false;
      have_dtype = true;
    } else if (key == "shape") {
      std::uint32_t dims;
      if (!c.array_header(dims) || dims > c.array_limit()) return false;
      sizes.clear();
      numel = 1;
      for (std::uint32_t d = 0; d < dims; ++d) {
        std::int64_t s;
        if (!c.integer(s) || s < 0) return false;
        sizes.push_back(s);
        if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(s), &numel) || numel > limits().tensor_elements)
          return false;
      }
      have_shape = true;
    } else if (key == "data") {
      if (!c.bin(data)) return false;
      have_data = true;
    } else if (key == "pad") {
      std::string_view pad;
      if (!c.bin(pad)) return false;
    } else {
      return false;
    }
  }
  if (!have_dtype || !have_shape || !have_data) return false;
  c10::ScalarType type;
  if (dtype == "float32") type = c10::ScalarType::Float;
  else if (dtype == "int64") type = c10::ScalarType::Long;
  else if (dtype == "float16") type = c10::ScalarType::Half;
  else if (dtype == "uint8") type = c10::ScalarType::Byte;
  else {
    try {
      type = dtype_from_name(std::string(dtype));
    } catch (const std::exception&) {
      return false;  // the general path names it
    }
  }
  const std::size_t element = c10::elementSize(type);
  if (data.size() != numel * element) return false;
  const char* bytes = data.data();
  if (arena && !data.empty() && bytes >= arena->begin && bytes + data.size() <= arena->end &&
      (bytes - arena->begin) % element == 0) {
    out = storage_view(arena->storage, static_cast<std::int64_t>((bytes - arena->begin) / element), sizes, type);
    return true;
  }
  out = at::empty(sizes, at::TensorOptions().dtype(type));
  if (!data.empty()) std::memcpy(out.data_ptr(), bytes, data.size());
  return true;
}

// Tags whose values are all scalars (the general path takes lists and maps).
bool scalar_tags(Cursor& c, Value& out) {
  if (!c.empty() && c.peek() == 0xc0) {  // nil: no tags
    c.skip_byte();
    out = Value();
    return true;
  }
  std::uint32_t n;
  if (!c.map_header(n)) return false;
  if (n > c.array_limit()) return false;  // msgpack-c's map limit is looser; this only guards reserve()
  Value::Map map;
  map.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string key;
    if (!text(c, key) || c.empty()) return false;
    const unsigned char b = c.peek();
    if (b == 0xc0 || b == 0xc2 || b == 0xc3) {
      map.emplace_back(std::move(key), b == 0xc0 ? Value() : Value(b == 0xc3));
      c.skip_byte();
    } else if (c.is_float()) {
      double d;
      if (!c.floating(d)) return false;
      map.emplace_back(std::move(key), Value(d));
    } else if (c.is_str()) {
      std::string s;
      if (!text(c, s)) return false;
      map.emplace_back(std::move(key), Value(std::move(s)));
    } else {
      std::int64_t v;
      if (!c.integer(v)) return false;  // a list, a map, bin, ext: the general path
      map.emplace_back(std::move(key), Value(static_cast<long long>(v)));
    }
  }
  out = Value(std::move(map));
  return true;
}

}  // namespace

bool decode_record_directly(const char* bytes, std::size_t len, Document& d, const Arena* arena) {
  Cursor c(bytes, len);
  std::uint32_t fields;
  if (!c.map_header(fields)) return false;
  bool has_id = false;
  for (std::uint32_t i = 0; i < fields; ++i) {
    std::string_view key;
    if (!c.str(key)) return false;
    bool ok;
    std::int64_t v = 0;
    if (key == "id") ok = has_id = text(c, d.id);
    else if (key == "embedding") ok = tensor(c, d.embedding, arena);
    else if (key == "tensor") ok = tensor(c, d.tensor, arena);
    else if (key == "text") ok = text(c, d.text);
    else if (key == "parent_id") ok = text(c, d.parent_id);
    else if (key == "uri") ok = text(c, d.uri);
    else if (key == "mime_type") ok = text(c, d.mime_type);
    else if (key == "modality") ok = text(c, d.modality);
    else if (key == "granularity") { ok = c.integer(v); d.granularity = static_cast<std::int32_t>(v); }
    else if (key == "adjacency") { ok = c.integer(v); d.adjacency = static_cast<std::int32_t>(v); }
    else if (key == "weight") ok = c.number(d.weight);
    else if (key == "tags") ok = scalar_tags(c, d.tags);
    else if (key == "blob") {
      std::string_view b;
      ok = c.bin(b);
      if (ok) d.blob.assign(b.data(), b.size());
    }
    else return false;  // chunks, matches, scores, evaluations, or unknown
    if (!ok) return false;
  }
  return has_id && c.at_end();
}

}  // namespace docarray::detail
