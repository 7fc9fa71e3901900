#pragma once
// Document <-> msgpack, the record format of binary document files.
// Internal to docarray: the file layout lives in binary_io.cpp.
#include <msgpack.hpp>

#include <c10/core/Storage.h>

#include <cstdint>
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

// Packs `doc` as a map of its set fields. Tensor bytes are appended by
// reference (vrefbuffer), so the tensors they point into are pushed onto
// `keepalive` and must outlive the buffer's use. With `aligned_at` (the
// stream offset where this record's first byte will land), payloads are
// padded to kPayloadAlignment. Returns the bytes appended.
std::uint64_t pack_document(msgpack::vrefbuffer& buf, const Document& doc, std::vector<at::Tensor>& keepalive,
                            std::optional<std::uint64_t> aligned_at = std::nullopt);

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
