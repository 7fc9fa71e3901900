#pragma once
// Decoding a record's msgpack bytes straight into a Document, without
// msgpack-c's object tree: the fast path of bulk file reads.
//
// It takes the records most files hold (id, text and the other string
// fields, numbers, blob, tensor and embedding, tags whose values are
// scalars) and gives up, returning false, on anything else: chunks,
// matches, scores, nested tags, unknown keys, and every kind of damage. The
// caller then decodes the same bytes the general way (unpack_document),
// which accepts the rest and names any fault exactly as it always has; so
// this path never decides what is an error, and its only duty is to produce
// the same Document as the general path wherever it returns true (the
// tests compare the two on every field).
#include <cstddef>

#include "docarray/document.hpp"
#include "msgpack_codec.hpp"

namespace docarray::detail {

// `fresh` is a document just constructed (nothing set). On false it may be
// partly filled: reset it before decoding it another way.
bool decode_record_directly(const char* bytes, std::size_t len, Document& fresh, const Arena* arena);

}  // namespace docarray::detail
