#pragma once
// A served flow's or `flow executor`'s address, as docflow::Client and the
// remote executors' connections take it.
#include <string>

namespace docflow::serve {

struct FlowAddress {
  std::string host;  // without the brackets of an IPv6 literal
  std::string port;
  std::string url;   // "http://HOST:PORT"
};

// "http://HOST:PORT" (a path after it is ignored) or "HOST:PORT"; a
// ClientError naming it otherwise (another scheme, no port).
FlowAddress parse_flow_address(const std::string& address);

}  // namespace docflow::serve
