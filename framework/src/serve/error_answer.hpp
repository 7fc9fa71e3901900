#pragma once
// What an error answer from a served flow or `flow executor` says, for the
// clients (docflow::Client and the remote executors' connections).
#include <string>

namespace docflow::serve {

// An executor's failure (Jina's header, in JSON or msgpack) by its
// description, a gateway's refusal by its detail, else the body itself, cut
// short.
std::string describe_error_answer(const std::string& body, bool binary);

}  // namespace docflow::serve
