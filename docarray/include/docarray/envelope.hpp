#pragma once
// A request or response as the network carries it: named fields (the
// endpoint, the parameters, Jina's header) and a list of documents under
// "data". Two encodings of the same thing:
//
//   JSON     {"data": [doc, ...] | {"docs": [doc, ...]}, "parameters": {...}, ...}
//            documents in the JSON Lines form (DocArray's field names)
//   msgpack  a map with the same keys; "data" is an array of documents in the
//            record encoding of binary .docs files (tensors as raw bytes)
//
// Parsing is for hostile input: sizes and nesting are bounded by limits(),
// and every error is a docarray::Error that says where: the byte (and line)
// of malformed JSON, or the document's index and field ("data[3]: field
// 'embedding': ...").
#include <string>
#include <string_view>

#include "docarray/document.hpp"

namespace docarray {

struct Envelope {
  Value fields = Value::map();  // every key but "data", in order
  DocumentArray docs;           // "data"
};

Envelope parse_json_envelope(std::string_view text);
// `fields` (a map, or null) first, then "data".
std::string to_json_envelope(const Value& fields, const DocumentArray& docs);

Envelope parse_msgpack_envelope(std::string_view bytes);
std::string to_msgpack_envelope(const Value& fields, const DocumentArray& docs);

}  // namespace docarray
