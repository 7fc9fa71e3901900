#pragma once
// Serves a flow over HTTP/1.1 with Jina's HTTP API (`/post`, `/index`,
// `/search`, `/update`, `/delete`, every endpoint an executor binds, `/`
// health, `/dry_run`, `/status`), documents as JSON or as msgpack
// (`Content-Type`/`Accept: application/x-msgpack`), Prometheus metrics on a
// port of their own.
//
//   docflow::Flow flow = docflow::Flow::load("flows/search.yml");
//   docflow::Gateway gateway(flow, docflow::GatewayOptions::from(flow.config().serve));
//   flow.open(workspace);
//   gateway.start();                 // binds; gateway.url() says where
//   ...                              // until SIGTERM, say
//   gateway.stop(std::chrono::seconds(10));
//   flow.close();
//
// Requests enter the flow exactly as a source's would (same order rules,
// same `prefetch` bound across all connections), except that a failure
// answers its own request (500, Jina's header naming the executor) and the
// service goes on. Network input is hostile: every size is bounded and every
// parse error is a 4xx that says what and where.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "docflow/flow.hpp"

namespace docflow {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 12345;  // 0: a free port (see Gateway::port())
  bool cors = false;
  int timeout_send_ms = -1;  // a request not answered in time gets 504; -1: no limit
  std::string token;         // when set, every route but `/` needs `Authorization: Bearer TOKEN`
  bool monitoring = false;
  int port_monitoring = 0;
  std::size_t max_body_bytes = 64u << 20;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_docs = 10000;         // documents per request
  std::size_t max_connections = 1024;
  std::size_t max_queued = 1024;        // requests waiting for room in the flow, beyond: 503
  // Request bodies held at once (in the flow or waiting), beyond: 503. With
  // the per-request limits this bounds the gateway's memory whatever the
  // clients do.
  std::size_t max_bytes_in_flight = std::size_t(1) << 30;
  std::size_t pipeline = 16;            // requests read ahead per connection
  int idle_timeout_ms = 60000;          // keep-alive connections idle longer are closed
  int read_timeout_ms = 10000;          // a request must arrive whole within this (slowloris)
  int write_timeout_ms = 30000;         // a client must read its answer within this
  int io_threads = 2;                   // network threads; executors run on the flow's pool

  static GatewayOptions from(const ServeConfig& serve);
};

class Gateway {
 public:
  // Before flow.open(): puts the flow in serving mode (failures answer their
  // request) and hooks the executor metrics.
  Gateway(Flow& flow, GatewayOptions options);
  ~Gateway();  // stops without grace if stop() was not called
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // After flow.open(): binds and serves. Throws docflow::Error naming the address.
  void start();
  int port() const;
  int monitoring_port() const;  // 0 without monitoring
  std::string url() const;      // http://HOST:PORT

  // Stops accepting, answers 503 to new requests on open connections,
  // waits up to `grace` for the accepted ones to be answered, then closes
  // every connection. True when every accepted request was answered.
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace docflow
