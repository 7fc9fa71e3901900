#pragma once
// A client for served flows, Jina's Client.post(on, inputs, parameters,
// request_size): documents go in batches over one keep-alive HTTP/1.1
// connection with several requests in flight (pipelined), and the answers
// come back in order. A 503 (overloaded, restarting) or a dropped
// connection is retried with exponential backoff.
//
//   docflow::Client client("http://127.0.0.1:12345");
//   docarray::DocumentArray matches = client.post("/search", queries);
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "docarray/document.hpp"
#include "docflow/client_options.hpp"

namespace docflow {

struct ClientResponse {
  std::size_t batch = 0;  // the request's index, from 0
  docarray::DocumentArray docs;
  docarray::Value parameters, header;
};

class Client {
 public:
  // "http://HOST:PORT" (a path after it is ignored) or "HOST:PORT".
  explicit Client(const std::string& url, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Fills `batch` with the next request's documents; false when there are none.
  using NextBatch = std::function<bool(docarray::DocumentArray& batch)>;
  using OnResponse = std::function<void(ClientResponse& response)>;

  // Sends every batch to `endpoint`; `on_response` sees each answer in
  // order. The first answer that is an error throws ClientError, after the
  // answers before it were delivered.
  void post(const std::string& endpoint, const NextBatch& next, const docarray::Value& parameters,
            const OnResponse& on_response);
  // The same over `docs` in batches of `request_size`; returns what came back.
  docarray::DocumentArray post(const std::string& endpoint, const docarray::DocumentArray& docs,
                               const docarray::Value& parameters = {}, std::size_t request_size = 100);

  // GET PATH: the status code and the body (no retries).
  std::pair<int, std::string> get(const std::string& path);
  const std::string& url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace docflow
