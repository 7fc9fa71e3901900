#pragma once
// An executor that runs in another process or on another machine (`flow
// executor`, or any flow served by `flow serve`), Jina's `external: true`:
// each request goes over the gateway's binary wire (msgpack over a
// keep-alive HTTP/1.1 connection, POST /post with its endpoint and
// parameters) and the answer's documents and parameters replace the
// request's. Stream events go to POST /post with exec_endpoint /_event, so
// a remote trainer or evaluator works in a batch run.
//
// Requests answer later (Executor::handle_async): waiting for the network
// holds no thread of the flow's pool. A request is sent from the io thread
// it is on (io_runner.hpp): the gateway's network thread that read it, or
// the connection that brought the previous remote executor's answer; from
// any other thread (a source, the pool) it goes to the io thread that all
// remote executors of the process share (shared_io_thread.hpp). So a
// served request through a chain of remote executors stays on one thread
// from the client's request to its answer: each hand-off between threads
// was a wake-up, 2 of a request's 4-5 on the gateway (bench_remote,
// bench/RESULTS.md). Each replica keeps, per io thread it sends from, one
// pipelined connection per address with up to kInFlight requests on it at
// once. open() and events use a synchronous Client.
//
// Replicas are addresses: replica r sends to address r first. When it
// cannot be reached (or answers 503), the request goes to the next address,
// and the unreachable one is skipped for `kDownMs` before it is tried again;
// an executor's own failure is not retried (it would fail again). A request
// retried after its connection broke may have run on the lost replica too:
// remote executors should be idempotent (SimpleIndexer is: ids replace).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
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
    // Skipped until then (steady_clock ns): it did not answer. Read and
    // written by the io threads of every link.
    std::atomic<std::int64_t> down_until{0};
  };
  struct Link;
  struct Call;
  Client& client(Address& a);
  // The link of the io thread this is called on, made on first use; null
  // when this is not an io thread.
  std::shared_ptr<Link> link_here();
  // On the call's io thread: orders the addresses and sends.
  void start(const std::shared_ptr<Call>& call);
  // On the call's io thread: sends the call to the address it is at.
  void attempt(const std::shared_ptr<Call>& call);
  void answered(const std::shared_ptr<Call>& call, std::size_t address, remote::Answer answer);
  void stop_io();

  RemoteOptions options_;
  // Kept while this lives: requests from threads that are not io threads
  // are sent from it.
  std::shared_ptr<remote::SharedIoThread> io_thread_;
  std::deque<Address> addresses_;  // this replica's own first (a deque: an Address never moves)
  std::mutex links_mu_;
  std::vector<std::shared_ptr<Link>> links_;  // one per io thread sent from
  std::atomic<bool> stopping_{false};         // closing: no request goes out
  bool stopped_ = false;
};

}  // namespace docflow
