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
Document unpack_document(const msgpack::object& obj);

}  // namespace docarray::detail
