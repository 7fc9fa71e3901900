#pragma once
// Document <-> msgpack, the record format of binary document files.
// Internal to docarray: the file layout lives in binary_io.cpp.
#include <msgpack.hpp>

#include <vector>

#include "docarray/document.hpp"

namespace docarray::detail {

// Packs `doc` as a map of its set fields. Tensor bytes are appended by
// reference (vrefbuffer), so the tensors they point into are pushed onto
// `keepalive` and must outlive the buffer's use.
void pack_document(msgpack::vrefbuffer& buf, const Document& doc, std::vector<at::Tensor>& keepalive);

// Decodes one record. Throws docarray::Error naming the field at fault.
// `depth` is the document's nesting (0 for a record's top document), checked
// against limits().depth.
Document unpack_document(const msgpack::object& obj, std::uint32_t depth = 0);

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
