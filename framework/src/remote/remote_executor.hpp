#pragma once
// An executor that runs in another process or on another machine (`flow
// executor`, or any flow served by `flow serve`), Jina's `external: true`:
// each request goes over the gateway's binary wire (msgpack over a
// keep-alive HTTP/1.1 connection, POST /post with its endpoint and
// parameters) and the answer's documents and parameters replace the
// request's. Stream events go to POST /post with exec_endpoint /_event, so
// a remote trainer or evaluator works in a batch run.
//
// Requests answer later (Executor::handle_async): each replica keeps one
// pipelined connection per address, with up to kInFlight requests on it at
// once, on the io thread that all remote executors of the process share
// (shared_io_thread.hpp), so waiting for the network holds no thread of the
// flow's pool, and an answer goes on to the next remote executor without a
// thread hand-off. open() and events use a synchronous Client.
//
// Replicas are addresses: replica r sends to address r first. When it
// cannot be reached (or answers 503), the request goes to the next address,
// and the unreachable one is skipped for `kDownMs` before it is tried again;
// an executor's own failure is not retried (it would fail again). A request
// retried after its connection broke may have run on the lost replica too:
// remote executors should be idempotent (SimpleIndexer is: ids replace).
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "docflow/client.hpp"
#include "docflow/executor.hpp"
#include "pipelined_connection.hpp"
#include "shared_io_thread.hpp"

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
  void close() override;
  void on_event(const Event& event) override;
  bool answers_later() const override { return true; }
  void handle_async(Request& request, Done done) override;

 private:
  struct Address {
    std::string url, host, port;
    std::unique_ptr<Client> client;  // open() and events; connected on first use
    std::shared_ptr<remote::PipelinedConnection> connection;  // requests; on the io thread
    std::chrono::steady_clock::time_point down_until{};      // on the io thread
  };
  struct Call;
  Client& client(Address& a);
  // On the io thread: sends the call to the address it is at.
  void attempt(const std::shared_ptr<Call>& call);
  void answered(const std::shared_ptr<Call>& call, Address& a, remote::Answer answer);
  void stop_io();

  RemoteOptions options_;
  // Declared before the addresses, so released after them: a connection's
  // socket and timer deregister from the io_context's services as they go
  // (the other order was a use after free, found by AddressSanitizer).
  // stop_io() drops the connections on the io thread itself.
  std::shared_ptr<remote::SharedIoThread> io_thread_;
  std::vector<Address> addresses_;  // this replica's own first
  bool stopping_ = false;           // on the io thread: closing, no request goes out
  bool stopped_ = false;
};

}  // namespace docflow
