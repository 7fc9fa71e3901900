// The msgpack encoding of a network message (docarray/envelope.hpp): the
// documents in the record encoding of .docs files, so that tensors travel as
// raw bytes.
#include <ATen/ATen.h>

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docarray/utf8.hpp"
#include "msgpack_codec.hpp"

namespace docarray {

Envelope parse_msgpack_envelope(std::string_view bytes) {
  msgpack::object_handle handle;
  std::size_t offset = 0;
  try {
    // The same bounds as one record of a .docs file: no container declares
    // more elements than the message has bytes, nesting as documents allow.
    msgpack::unpack(handle, bytes.data(), bytes.size(), offset, nullptr, nullptr, detail::record_limits(bytes.size()));
  } catch (const msgpack::insufficient_bytes&) {
    throw Error("the msgpack message ends early (" + std::to_string(bytes.size()) + " bytes): truncated?");
  } catch (const std::exception& e) {
    throw Error("invalid msgpack at byte " + std::to_string(offset) + ": " + e.what());
  }
  if (offset != bytes.size())
    throw Error("invalid msgpack: " + std::to_string(bytes.size() - offset) + " bytes follow the message at byte " +
                std::to_string(offset));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::MAP) throw Error("the message must be a msgpack map");
  Envelope env;
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object& key = o.via.map.ptr[i].key;
    const msgpack::object& val = o.via.map.ptr[i].val;
    if (key.type != msgpack::type::STR) throw Error("the message's keys must be strings (key " + std::to_string(i) + ")");
    std::string k(key.via.str.ptr, key.via.str.size);
    if (invalid_utf8_at(k) != std::string::npos) throw Error("the message's key " + std::to_string(i) + " is not valid UTF-8");
    if (k != "data") {
      env.fields.as_map().emplace_back(k, detail::unpack_tag_value(val, k, 0));
      continue;
    }
    if (val.type == msgpack::type::NIL) continue;
    if (val.type != msgpack::type::ARRAY) throw Error("field 'data': expected an array of documents");
    env.docs.reserve(val.via.array.size);
    for (std::uint32_t d = 0; d < val.via.array.size; ++d) {
      try {
        env.docs.append(detail::unpack_document(val.via.array.ptr[d], 0));
      } catch (const Error& e) {
        throw Error("data[" + std::to_string(d) + "]: " + e.what());
      }
    }
  }
  return env;
}

std::string to_msgpack_envelope(const Value& fields, const DocumentArray& docs) {
  msgpack::vrefbuffer buf;
  std::vector<at::Tensor> keepalive;
  msgpack::packer<msgpack::vrefbuffer> pk(buf);
  std::uint32_t n = 1;
  if (fields.is_map())
    for (const auto& [k, v] : fields.as_map()) n += k != "data";
  pk.pack_map(n);
  if (fields.is_map())
    for (const auto& [k, v] : fields.as_map()) {
      if (k == "data") continue;
      pk.pack_str(static_cast<std::uint32_t>(k.size()));
      pk.pack_str_body(k.data(), static_cast<std::uint32_t>(k.size()));
      detail::pack_tag_value(buf, v);
    }
  pk.pack_str(4);
  pk.pack_str_body("data", 4);
  pk.pack_array(static_cast<std::uint32_t>(docs.size()));
  const auto& all = docs.raw();
  for (std::size_t i = 0; i < all.size(); ++i) {
    detail::prefetch_for_packing(all, i, false);
    detail::pack_document(buf, all[i], keepalive);
  }
  // Gather the references (tensor bytes) into one body.
  std::string out;
  const iovec* iov = buf.vector();
  std::size_t total = 0;
  for (std::size_t i = 0; i < buf.vector_size(); ++i) total += iov[i].iov_len;
  out.reserve(total);
  for (std::size_t i = 0; i < buf.vector_size(); ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

}  // namespace docarray
