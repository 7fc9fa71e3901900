#include "error_answer.hpp"

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"

namespace docflow::serve {

std::string describe_error_answer(const std::string& body, bool binary) {
  for (const bool msgpack : {binary, false}) {
    try {
      docarray::Envelope env = msgpack ? docarray::parse_msgpack_envelope(body) : docarray::parse_json_envelope(body);
      if (const docarray::Value* h = env.fields.find("header"))
        if (const docarray::Value* st = h->find("status"))
          if (const docarray::Value* d = st->find("description"); d && d->is_string()) return d->as_string();
      if (const docarray::Value* d = env.fields.find("detail"); d && d->is_string()) return d->as_string();
    } catch (const docarray::Error&) {
    }
    if (!msgpack) break;
  }
  if (binary) return "(an answer that is not an envelope, " + std::to_string(body.size()) + " bytes)";
  return body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
}

}  // namespace docflow::serve
