#pragma once
// An executor that runs in another process or on another machine (`flow
// executor`, or any flow served by `flow serve`), Jina's `external: true`:
// each request goes over the gateway's binary wire (msgpack over a
// keep-alive HTTP/1.1 connection, POST /post with its endpoint and
// parameters) and the answer's documents and parameters replace the
// request's. Stream events go to POST /post with exec_endpoint /_event, so
// a remote trainer or evaluator works in a batch run.
//
// Replicas are addresses: replica r sends to address r first. When it
// cannot be reached (or answers 503), the request goes to the next address,
// and the unreachable one is skipped for `kDownMs` before it is tried again;
// an executor's own failure is not retried (it would fail again). A request
// retried after its connection broke may have run on the lost replica too:
// remote executors should be idempotent (SimpleIndexer is: ids replace).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "docflow/client.hpp"
#include "docflow/executor.hpp"

namespace docflow {

struct RemoteOptions {
  std::vector<std::string> addresses;  // "host:port", one per replica
  int timeout_ready_ms = 600000;       // open(): waiting for its address to answer /status (-1: no limit)
  int timeout_send_ms = 600000;        // one request's round trip (-1: no limit)
  std::string token;                   // `Authorization: Bearer`, for a `flow executor --token-file`
};

// Jina's -1 ("no limit") for timeout_ready and timeout_send, as a day in ms.
inline int limit_ms(int ms) { return ms < 0 ? 24 * 3600 * 1000 : ms; }

class RemoteExecutor : public Executor {
 public:
  RemoteExecutor(ExecutorContext context, RemoteOptions options);
  ~RemoteExecutor() override;
  void open() override;
  void on_event(const Event& event) override;

 private:
  struct Address {
    std::string url;
    std::unique_ptr<Client> client;  // connected on first use
    std::chrono::steady_clock::time_point down_until{};
  };
  void forward(Request& request);
  Client& client(Address& a);

  RemoteOptions options_;
  std::vector<Address> addresses_;  // this replica's own first
};

}  // namespace docflow
