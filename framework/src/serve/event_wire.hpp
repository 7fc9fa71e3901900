#pragma once
// Stream events on the wire: a remote executor (RemoteExecutor::on_event)
// sends them to the flow that serves it as POST /post with exec_endpoint
// /_event and the event in `parameters`; the gateway (HttpApi) reads them
// back. One definition for both sides.
//   {"kind": "end_of_epoch" | "end_of_stream", "epoch": N, "endpoint": "/train"}
#include <optional>

#include "docarray/value.hpp"
#include "docflow/executor.hpp"

namespace docflow::serve {

constexpr const char* kEventEndpoint = "/_event";

inline docarray::Value event_parameters(const Event& event) {
  docarray::Value p = docarray::Value::map();
  p["kind"] = event.kind == Event::Kind::EndOfEpoch ? "end_of_epoch" : "end_of_stream";
  p["epoch"] = event.epoch;
  p["endpoint"] = event.endpoint;
  return p;
}

// The event in `p`, or nothing when it is not one.
inline std::optional<Event> event_from_parameters(const docarray::Value& p) {
  const docarray::Value* kind = p.find("kind");
  const docarray::Value* epoch = p.find("epoch");
  const docarray::Value* endpoint = p.find("endpoint");
  if (!kind || !kind->is_string() || (kind->as_string() != "end_of_epoch" && kind->as_string() != "end_of_stream") ||
      (epoch && (!epoch->is_int() || epoch->as_int() < 0)) || (endpoint && !endpoint->is_string()))
    return std::nullopt;
  return Event{kind->as_string() == "end_of_epoch" ? Event::Kind::EndOfEpoch : Event::Kind::EndOfStream,
               epoch ? static_cast<int>(epoch->as_int()) : 0, endpoint ? endpoint->as_string() : std::string()};
}

}  // namespace docflow::serve
