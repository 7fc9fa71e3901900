#pragma once
// What docflow's HTTP clients (docflow::Client, `flow ping`) are told and
// what they throw, without documents: `flow ping` and the other commands
// that never touch a tensor are built on this and load no LibTorch.
#include <cstddef>
#include <string>

#include "docflow/error.hpp"

namespace docflow {

struct ClientOptions {
  std::string token;          // sent as `Authorization: Bearer TOKEN`
  bool binary = false;        // msgpack bodies both ways (tensors as raw bytes)
  std::size_t in_flight = 4;  // requests on the connection at once
  int retries = 5;            // per request, on 503 or a lost connection
  int backoff_ms = 100;       // doubled on each retry
  int timeout_ms = 600000;    // connecting, sending one request, waiting for one answer
};

// The bearer token in `file`: its one line, trailing whitespace dropped;
// an empty file, several lines or no file is an Error naming it.
std::string read_token_file(const std::string& file);

// The token a client sends when nothing else says: DOCFLOW_TOKEN, or none.
std::string default_token();

// An answer that is not a success, or a server that cannot be reached:
// names the URL, the batch, the HTTP status and what the server said.
class ClientError : public Error {
 public:
  ClientError(const std::string& what, int status = 0) : Error(what), status_(status) {}
  int status() const { return status_; }  // 0 when no answer came

 private:
  int status_;
};

}  // namespace docflow
