#include "msgpack_codec.hpp"

#include <ATen/ATen.h>

#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <c10/util/MaybeOwned.h>
#include <c10/util/SmallVector.h>

#include "docarray/dtype.hpp"
#include "docarray/error.hpp"
#include "docarray/limits.hpp"
#include "docarray/storage_view.hpp"
#include "docarray/utf8.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "docarray files store tensor bytes little-endian; a big-endian port must swap them");

namespace docarray::detail {
namespace {

// Where a record is packed: the caller's vrefbuffer or RecordBuffer,
// counting the bytes so that a tensor payload can be padded to an aligned
// offset in the file. msgpack writes a record as a few dozen pieces of 1-10
// bytes (a header, then a key, ...): pieces under 64 bytes are gathered here,
// inline, always copied, and reach the buffer as one piece before each
// larger one and at the end (a file write of 100k 512-float embeddings:
// 0.84 of a plain write with this stage, 0.69 without; bench/RESULTS.md,
// 2026-12-07).
struct Out {
  Out(msgpack::vrefbuffer* v, RecordBuffer* r, std::optional<std::uint64_t> b) : vref(v), record(r), base(b) {}
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;

  msgpack::vrefbuffer* vref;  // one of the two
  RecordBuffer* record;
  std::optional<std::uint64_t> base;  // file offset of the record's first byte; none: no padding
  std::uint64_t written = 0;

  void write(const char* p, std::size_t n) {
    written += n;
    if (n < kSmall) {
      if (staged_ + n > sizeof stage_) flush();
      for (std::size_t i = 0; i < n; ++i) stage_[staged_ + i] = p[i];
      staged_ += n;
      return;
    }
    write_large(p, n);
  }
  // Whether a piece of `n` bytes will be referenced where it lies (so what
  // holds it must outlive the buffer) rather than copied: never under 64
  // bytes; from there as the buffer decides (vrefbuffer from 32 bytes).
  bool references(std::size_t n) const { return n >= kSmall && (record ? n >= record->reference_min() : true); }

  // Hands what is gathered to the buffer: before a payload, and by whoever
  // made this Out once the record is packed (a record abandoned by an
  // exception loses its last pieces; its owner drops what it wrote anyway).
  void flush() {
    if (staged_ == 0) return;
    // Copied, never referenced: the stage is reused (vrefbuffer would keep
    // a pointer to pieces of 32 bytes and more).
    if (record) record->copy(stage_, staged_);
    else vref->append_copy(stage_, staged_);
    staged_ = 0;
  }

 private:
  static constexpr std::size_t kSmall = 64;
  void write_large(const char* p, std::size_t n) {
    flush();
    if (record) record->write(p, n);
    else vref->write(p, n);
  }
  char stage_[512];
  std::size_t staged_ = 0;
};
using Packer = msgpack::packer<Out>;

// msgpack-c's pack_double() writes integral doubles as integers, which would
// turn the tag 1.0 into 1; docarray keeps the type, so floats are always
// written as msgpack float64 (0xcb + 8 big-endian bytes).
void pack_float64(Out& buf, double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, 8);
  char out[9];
  out[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  buf.write(out, 9);
}

void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_value(Packer& pk, Out& buf, const Value& v) {
  switch (v.type()) {
    case Value::Type::Null: pk.pack_nil(); break;
    case Value::Type::Bool: v.as_bool() ? pk.pack_true() : pk.pack_false(); break;
    case Value::Type::Int: pk.pack_int64(v.as_int()); break;
    case Value::Type::Double: pack_float64(buf, v.as_double()); break;
    case Value::Type::String: pack_str(pk, v.as_string()); break;
    case Value::Type::List:
      pk.pack_array(static_cast<std::uint32_t>(v.size()));
      for (const auto& item : v.as_list()) pack_value(pk, buf, item);
      break;
    case Value::Type::Map:
      pk.pack_map(static_cast<std::uint32_t>(v.size()));
      for (const auto& [k, item] : v.as_map()) {
        pack_str(pk, k);
        pack_value(pk, buf, item);
      }
      break;
  }
}

void pack_tensor(Packer& pk, Out& out, const at::Tensor& t, std::vector<at::Tensor>& keepalive) {
  // Each tensor op costs a dispatcher round trip (~1 us): skip them for the
  // common case of a CPU tensor that is already contiguous, and borrow it.
  const auto c = t.device().is_cpu() && t.is_contiguous()
                     ? c10::MaybeOwned<at::Tensor>::borrowed(t)
                     : c10::MaybeOwned<at::Tensor>::owned(t.detach().to(at::kCPU).contiguous());
  std::string dtype = dtype_name(c->scalar_type());
  std::size_t nbytes = c->numel() * c->element_size();
  if (nbytes > std::numeric_limits<std::uint32_t>::max())
    throw Error("a tensor of " + std::to_string(nbytes) + " bytes exceeds the 4 GiB record limit");
  const bool padded = out.base && nbytes >= kAlignedPayloadMin;
  pk.pack_map(padded ? 4 : 3);
  pack_str(pk, "dtype");
  pack_str(pk, dtype);
  pack_str(pk, "shape");
  pk.pack_array(static_cast<std::uint32_t>(c->dim()));
  for (auto s : c->sizes()) pk.pack_int64(s);
  if (padded) {
    // "pad" (4 bytes) + bin 8 header (2) + the padding + "data" (5) + the
    // payload's bin header: choose the padding that puts the payload on a
    // kPayloadAlignment boundary of the file, so a reader can alias it.
    const std::uint64_t bin_header = nbytes < 256 ? 2 : nbytes < 65536 ? 3 : 5;
    const std::uint64_t unpadded = *out.base + out.written + 4 + 2 + 5 + bin_header;
    const auto pad = static_cast<std::uint32_t>((kPayloadAlignment - unpadded % kPayloadAlignment) % kPayloadAlignment);
    static constexpr char zeros[kPayloadAlignment] = {};
    pack_str(pk, "pad");
    pk.pack_bin(pad);
    pk.pack_bin_body(zeros, pad);
  }
  pack_str(pk, "data");
  pk.pack_bin(static_cast<std::uint32_t>(nbytes));
  if (padded && (*out.base + out.written) % kPayloadAlignment != 0)
    throw std::logic_error("docarray: a tensor payload missed its alignment");  // the arithmetic above is wrong
  pk.pack_bin_body(static_cast<const char*>(c->data_ptr()), static_cast<std::uint32_t>(nbytes));
  // Only a referenced payload needs its tensor kept: a copied one would cost
  // two atomic reference counts, the second on whichever thread clears the
  // buffer (the file writer's helper: a cache line from the other core per
  // document, ~10 ms of a 100k-document write).
  if (out.references(nbytes)) keepalive.push_back(*c);
}

void pack_scores(Packer& pk, Out& buf, const Scores& scores) {
  pk.pack_map(static_cast<std::uint32_t>(scores.size()));
  for (const auto& [name, s] : scores) {
    pack_str(pk, name);
    std::uint32_t n = 1 + !s.op_name.empty() + !s.description.empty() + !s.ref_id.empty();
    pk.pack_map(n);
    pack_str(pk, "value");
    pack_float64(buf, s.value);
    if (!s.op_name.empty()) { pack_str(pk, "op_name"); pack_str(pk, s.op_name); }
    if (!s.description.empty()) { pack_str(pk, "description"); pack_str(pk, s.description); }
    if (!s.ref_id.empty()) { pack_str(pk, "ref_id"); pack_str(pk, s.ref_id); }
  }
}

// --- decoding -------------------------------------------------------------

[[noreturn]] void bad(std::string_view field, const std::string& what) {
  throw Error("field '" + std::string(field) + "': " + what);
}

const char* kind(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "float";
    case msgpack::type::STR: return "string";
    case msgpack::type::BIN: return "binary";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    default: return "extension";
  }
}

void expect(const msgpack::object& o, msgpack::type::object_type t, std::string_view field,
            const char* wanted) {
  if (o.type != t) bad(field, std::string("expected ") + wanted + ", found " + kind(o));
}

std::string get_str(const msgpack::object& o, std::string_view field) {
  expect(o, msgpack::type::STR, field, "a string");
  std::string_view s(o.via.str.ptr, o.via.str.size);
  // Strings are UTF-8 as in DocArray's protobuf; a broken byte would surface
  // later, far from here, in whatever writes the text as JSON.
  if (auto at = invalid_utf8_at(s); at != std::string_view::npos)
    bad(field, "is not valid UTF-8 (byte " + std::to_string(at) + " of " + std::to_string(s.size()) +
                   "); binary data belongs in `blob`");
  return std::string(s);
}

std::int64_t get_int(const msgpack::object& o, std::string_view field) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  expect(o, msgpack::type::POSITIVE_INTEGER, field, "an integer");
  if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    bad(field, "integer " + std::to_string(o.via.u64) + " does not fit in int64");
  return static_cast<std::int64_t>(o.via.u64);
}

double get_double(const msgpack::object& o, std::string_view field) {
  if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) return o.via.f64;
  if (o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER)
    return static_cast<double>(get_int(o, field));
  bad(field, std::string("expected a number, found ") + kind(o));
}

Value get_value(const msgpack::object& o, const std::string& field, std::uint32_t depth) {
  check_depth(depth, field, "tag values");
  switch (o.type) {
    case msgpack::type::NIL: return Value();
    case msgpack::type::BOOLEAN: return Value(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: return Value(get_int(o, field));
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return Value(o.via.f64);
    case msgpack::type::STR: return Value(get_str(o, field));
    case msgpack::type::ARRAY: {
      Value::List list;
      list.reserve(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        list.push_back(get_value(o.via.array.ptr[i], field + "[" + std::to_string(i) + "]", depth + 1));
      return Value(std::move(list));
    }
    case msgpack::type::MAP: {
      Value::Map map;
      map.reserve(o.via.map.size);
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        std::string key = get_str(o.via.map.ptr[i].key, field + " key");
        map.emplace_back(key, get_value(o.via.map.ptr[i].val, field + "." + key, depth + 1));
      }
      return Value(std::move(map));
    }
    default: bad(field, std::string("a tag value cannot be ") + kind(o));
  }
}

// A map key, as a view: the known keys need no copy and no UTF-8 check
// (an unknown one is quoted in the error through get_str, which checks).
std::string_view key_of(const msgpack::object& k, std::string_view where) {
  expect(k, msgpack::type::STR, where, "a string");
  return std::string_view(k.via.str.ptr, k.via.str.size);
}

at::Tensor get_tensor(const msgpack::object& o, const std::string& field, const Arena* arena) {
  expect(o, msgpack::type::MAP, field, "a map {dtype, shape, data}");
  const msgpack::object *dtype = nullptr, *shape = nullptr, *data = nullptr;
  auto sub = [&](const char* part) { return field + part; };  // names built on the error paths only
  // Every check tests the type first and builds the field's name only to
  // throw (string building was about 2% of a 100k-document read profile).
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object& k = o.via.map.ptr[i].key;
    if (k.type != msgpack::type::STR) key_of(k, sub(" key"));  // throws
    const std::string_view key(k.via.str.ptr, k.via.str.size);
    const msgpack::object* val = &o.via.map.ptr[i].val;
    if (key == "dtype") dtype = val;
    else if (key == "shape") shape = val;
    else if (key == "data") data = val;
    else if (key == "pad") {  // alignment only
      if (val->type != msgpack::type::BIN) expect(*val, msgpack::type::BIN, sub(".pad"), "binary");
    }
    else bad(field, "unknown key '" + get_str(k, sub(" key")) + "'");
  }
  if (!dtype || !shape || !data) bad(field, "a tensor needs dtype, shape and data");
  c10::ScalarType type;
  try {
    type = dtype_from_name(get_str(*dtype, sub(".dtype")));
  } catch (const Error& e) {
    bad(sub(".dtype"), e.what());
  }
  if (shape->type != msgpack::type::ARRAY) expect(*shape, msgpack::type::ARRAY, sub(".shape"), "an array");
  c10::SmallVector<std::int64_t, 6> sizes;
  std::uint64_t numel = 1;
  for (std::uint32_t i = 0; i < shape->via.array.size; ++i) {
    const msgpack::object& dim = shape->via.array.ptr[i];
    const std::int64_t s = dim.type == msgpack::type::POSITIVE_INTEGER && dim.via.u64 <= std::uint64_t{1} << 62
                               ? static_cast<std::int64_t>(dim.via.u64)
                               : get_int(dim, sub(".shape"));
    if (s < 0) bad(sub(".shape"), "negative dimension " + std::to_string(s));
    sizes.push_back(s);
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(s), &numel) || numel > limits().tensor_elements)
      bad(sub(".shape"), "has more elements than " + limit_hint("tensor_elements"));
  }
  if (data->type != msgpack::type::BIN) expect(*data, msgpack::type::BIN, sub(".data"), "binary");
  // Checked against the bytes present before anything is allocated.
  const std::uint64_t nbytes = numel * c10::elementSize(type);
  if (data->via.bin.size != nbytes)
    bad(sub(".data"), "holds " + std::to_string(data->via.bin.size) + " bytes, shape and dtype need " +
                          std::to_string(nbytes));
  const char* bytes = data->via.bin.ptr;
  const std::size_t element = c10::elementSize(type);
  if (arena && nbytes > 0 && bytes >= arena->begin && bytes + nbytes <= arena->end &&
      (bytes - arena->begin) % element == 0)
    return storage_view(arena->storage, static_cast<std::int64_t>((bytes - arena->begin) / element), sizes, type);  // no copy
  at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(type));
  if (nbytes) std::memcpy(t.data_ptr(), bytes, nbytes);
  return t;
}

Scores get_scores(const msgpack::object& o, const std::string& field) {
  expect(o, msgpack::type::MAP, field, "a map");
  Scores scores;
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    std::string name = get_str(o.via.map.ptr[i].key, field + " key");
    const msgpack::object& s = o.via.map.ptr[i].val;
    std::string where = field + "." + name;
    expect(s, msgpack::type::MAP, where, "a map");
    NamedScore score;
    for (std::uint32_t j = 0; j < s.via.map.size; ++j) {
      std::string key = get_str(s.via.map.ptr[j].key, where + " key");
      const msgpack::object& val = s.via.map.ptr[j].val;
      if (key == "value") score.value = get_double(val, where + ".value");
      else if (key == "op_name") score.op_name = get_str(val, where + ".op_name");
      else if (key == "description") score.description = get_str(val, where + ".description");
      else if (key == "ref_id") score.ref_id = get_str(val, where + ".ref_id");
      else bad(where, "unknown key '" + key + "'");
    }
    scores[name] = std::move(score);
  }
  return scores;
}

DocumentArray get_docs(const msgpack::object& o, const std::string& field, std::uint32_t depth, const Arena* arena) {
  expect(o, msgpack::type::ARRAY, field, "an array");
  DocumentArray docs;
  docs.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    try {
      docs.append(unpack_document(o.via.array.ptr[i], depth, arena));
    } catch (const Error& e) {
      throw Error(field + "[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return docs;
}


void pack_document(Out& buf, const Document& d, std::vector<at::Tensor>& keepalive) {
  Packer pk(buf);
  std::uint32_t n = 1;  // id
  n += !d.parent_id.empty() + (d.granularity != 0) + (d.adjacency != 0) + !d.text.empty() +
       !d.uri.empty() + !d.mime_type.empty() + !d.blob.empty() + d.tensor.defined() +
       d.embedding.defined() + !d.modality.empty() + (d.weight != 0.0) + !d.tags.is_null() +
       !d.scores.empty() + !d.evaluations.empty() + !d.chunks.empty() + !d.matches.empty();
  pk.pack_map(n);
  auto str_field = [&](const char* name, const std::string& v) {
    if (v.empty()) return;
    pack_str(pk, name);
    pack_str(pk, v);
  };
  pack_str(pk, "id");
  pack_str(pk, d.id);
  str_field("parent_id", d.parent_id);
  if (d.granularity != 0) { pack_str(pk, "granularity"); pk.pack_int32(d.granularity); }
  if (d.adjacency != 0) { pack_str(pk, "adjacency"); pk.pack_int32(d.adjacency); }
  str_field("text", d.text);
  str_field("uri", d.uri);
  str_field("mime_type", d.mime_type);
  if (!d.blob.empty()) {
    pack_str(pk, "blob");
    pk.pack_bin(static_cast<std::uint32_t>(d.blob.size()));
    pk.pack_bin_body(d.blob.data(), static_cast<std::uint32_t>(d.blob.size()));
  }
  if (d.tensor.defined()) { pack_str(pk, "tensor"); pack_tensor(pk, buf, d.tensor, keepalive); }
  if (d.embedding.defined()) { pack_str(pk, "embedding"); pack_tensor(pk, buf, d.embedding, keepalive); }
  str_field("modality", d.modality);
  if (d.weight != 0.0) { pack_str(pk, "weight"); pack_float64(buf, d.weight); }
  if (!d.tags.is_null()) { pack_str(pk, "tags"); pack_value(pk, buf, d.tags); }
  if (!d.scores.empty()) { pack_str(pk, "scores"); pack_scores(pk, buf, d.scores); }
  if (!d.evaluations.empty()) { pack_str(pk, "evaluations"); pack_scores(pk, buf, d.evaluations); }
  for (auto [name, arr] : {std::pair{"chunks", &d.chunks}, std::pair{"matches", &d.matches}}) {
    if (arr->empty()) continue;
    pack_str(pk, name);
    pk.pack_array(static_cast<std::uint32_t>(arr->size()));
    for (const auto& child : *arr) pack_document(buf, child, keepalive);
  }
}

}  // namespace

void pack_document(msgpack::vrefbuffer& buf, const Document& doc, std::vector<at::Tensor>& keepalive) {
  Out out{&buf, nullptr, std::nullopt};
  pack_document(out, doc, keepalive);
  out.flush();
}

std::uint64_t pack_document(RecordBuffer& buf, const Document& doc, std::vector<at::Tensor>& keepalive,
                            std::uint64_t aligned_at) {
  Out out{nullptr, &buf, aligned_at};
  pack_document(out, doc, keepalive);
  out.flush();
  return out.written;
}

void pack_tag_value(msgpack::vrefbuffer& buf, const Value& v) {
  Out out{&buf, nullptr, std::nullopt};
  Packer pk(out);
  pack_value(pk, out, v);
  out.flush();
}

Value unpack_tag_value(const msgpack::object& o, const std::string& field, std::uint32_t depth) {
  return get_value(o, field, depth);
}

msgpack::unpack_limit record_limits(std::size_t len) {
  // A document level is a map and its chunks array; a tag level one container.
  const std::size_t depth = 2 * static_cast<std::size_t>(limits().depth) + 8;
  return msgpack::unpack_limit(len, len / 2 + 1, len, len, len, depth);
}

void unpack_document_into(const msgpack::object& o, Document& d, std::uint32_t depth, const Arena* arena) {
  check_depth(depth, "document", "documents (chunks, matches)");
  expect(o, msgpack::type::MAP, "document", "a map");
  bool has_id = false;
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    const std::string_view key = key_of(o.via.map.ptr[i].key, "document key");
    const msgpack::object& v = o.via.map.ptr[i].val;
    if (key == "id") { d.id = get_str(v, key); has_id = true; }
    else if (key == "embedding") d.embedding = get_tensor(v, std::string(key), arena);
    else if (key == "tensor") d.tensor = get_tensor(v, std::string(key), arena);
    else if (key == "text") d.text = get_str(v, key);
    else if (key == "parent_id") d.parent_id = get_str(v, key);
    else if (key == "granularity") d.granularity = static_cast<std::int32_t>(get_int(v, key));
    else if (key == "adjacency") d.adjacency = static_cast<std::int32_t>(get_int(v, key));
    else if (key == "uri") d.uri = get_str(v, key);
    else if (key == "mime_type") d.mime_type = get_str(v, key);
    else if (key == "blob") {
      expect(v, msgpack::type::BIN, key, "binary");
      d.blob.assign(v.via.bin.ptr, v.via.bin.size);
    }
    else if (key == "modality") d.modality = get_str(v, key);
    else if (key == "weight") d.weight = get_double(v, key);
    else if (key == "tags") {
      d.tags = get_value(v, std::string(key), 0);
      if (!d.tags.is_map() && !d.tags.is_null()) bad(key, std::string("expected a map, found ") + kind(v));
    }
    else if (key == "scores") d.scores = get_scores(v, std::string(key));
    else if (key == "evaluations") d.evaluations = get_scores(v, std::string(key));
    else if (key == "chunks") d.chunks = get_docs(v, std::string(key), depth + 1, arena);
    else if (key == "matches") d.matches = get_docs(v, std::string(key), depth + 1, arena);
    else bad(get_str(o.via.map.ptr[i].key, "document key"), "unknown field (written by a newer docflow?)");
  }
  if (!has_id) bad("id", "missing");
}

Document unpack_document(const msgpack::object& o, std::uint32_t depth, const Arena* arena) {
  Document d{std::string()};
  unpack_document_into(o, d, depth, arena);
  return d;
}

}  // namespace docarray::detail
