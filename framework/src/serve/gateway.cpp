#include "docflow/gateway.hpp"

#include <thread>

#include "http_api.hpp"
#include "http_server.hpp"
#include "io_pool.hpp"
#include "metrics.hpp"

namespace docflow {

GatewayOptions GatewayOptions::from(const ServeConfig& serve) {
  GatewayOptions o;
  o.host = serve.host;
  o.port = serve.port;
  o.cors = serve.cors;
  o.timeout_send_ms = serve.timeout_send_ms;
  o.monitoring = serve.monitoring;
  o.port_monitoring = serve.port_monitoring;
  return o;
}

struct Gateway::Impl {
  Flow& flow;
  GatewayOptions options;
  serve::IoPool io;
  // Shared with the flow's executor observer: the flow may outlive its gateway.
  std::shared_ptr<serve::Metrics> metrics;
  serve::TransportStats transport, monitoring_transport;
  std::unique_ptr<serve::HttpApi> api;
  std::unique_ptr<serve::MetricsApi> metrics_api;
  std::unique_ptr<serve::HttpServer> server, monitoring_server;
  bool started = false, stopped = false;

  Impl(Flow& f, GatewayOptions o) : flow(f), options(std::move(o)), io(options.io_threads) {}

  serve::ServerLimits limits() const {
    serve::ServerLimits l;
    l.header_bytes = options.max_header_bytes;
    l.body_bytes = options.max_body_bytes;
    l.connections = options.max_connections;
    l.pipeline = std::max<std::size_t>(1, options.pipeline);
    l.idle = std::chrono::milliseconds(options.idle_timeout_ms);
    l.read = std::chrono::milliseconds(options.read_timeout_ms);
    l.write = std::chrono::milliseconds(options.write_timeout_ms);
    return l;
  }

  void halt() {
    if (server) server->stop_accepting();
    if (monitoring_server) monitoring_server->stop_accepting();
    if (server) server->close_connections();
    if (monitoring_server) monitoring_server->close_connections();
    io.release();
    // Connections close on their threads; whatever is left is cut by stop().
    for (int i = 0; i < 50 && (transport.connections.load() > 0 || monitoring_transport.connections.load() > 0); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    io.stop();
    stopped = true;
  }
};

Gateway::Gateway(Flow& flow, GatewayOptions options) : impl_(std::make_unique<Impl>(flow, std::move(options))) {
  if (flow.is_open()) throw Error("construct the Gateway before flow.open(): it puts the flow in serving mode");
  std::vector<std::string> names;
  for (const auto& e : flow.config().executors) names.push_back(e.name);
  impl_->metrics = std::make_shared<serve::Metrics>(names);
  flow.isolate_failures(true);
  flow.observe_executors([metrics = impl_->metrics](const ExecutorSample& s) {
    metrics->executor(s.executor, s.seconds, s.documents, s.failed);
  });
}

Gateway::~Gateway() {
  if (impl_ && impl_->started && !impl_->stopped) impl_->halt();
}

void Gateway::start() {
  auto& im = *impl_;
  if (im.started) throw Error("the gateway is already started");
  if (!im.flow.is_open()) throw Error("start the gateway after flow.open()");
  im.api = std::make_unique<serve::HttpApi>(im.flow, im.options, *im.metrics, im.io.first(),
                                            [&io = im.io] { return io.current(); });
  im.server = std::make_unique<serve::HttpServer>(im.io, *im.api, im.limits(), im.transport);
  im.server->listen(im.options.host, im.options.port);
  if (im.options.monitoring) {
    im.metrics_api = std::make_unique<serve::MetricsApi>(*im.metrics, im.transport);
    serve::ServerLimits l = im.limits();
    l.connections = 64;
    im.monitoring_server = std::make_unique<serve::HttpServer>(im.io, *im.metrics_api, l, im.monitoring_transport);
    im.monitoring_server->listen(im.options.host, im.options.port_monitoring);
  }
  im.io.start();
  im.started = true;
}

int Gateway::port() const { return impl_->server ? impl_->server->port() : 0; }
int Gateway::monitoring_port() const { return impl_->monitoring_server ? impl_->monitoring_server->port() : 0; }

std::string Gateway::url() const {
  const std::string& h = impl_->options.host;
  const std::string host = h == "0.0.0.0" ? "127.0.0.1" : h.find(':') != std::string::npos ? "[" + h + "]" : h;
  return "http://" + host + ":" + std::to_string(port());
}

bool Gateway::stop(std::chrono::milliseconds grace) {
  auto& im = *impl_;
  if (!im.started || im.stopped) return true;
  // Drained first: the connections taken from the backlog as the socket
  // closes get "shutting down" (503) like any request from now on.
  im.api->drain();
  im.server->stop_accepting();
  const bool answered = im.api->wait_idle(grace);
  // Give the last answers a moment to be written before connections close.
  for (int i = 0; i < 100 && im.transport.connections.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (i == 20) im.server->close_connections();
  }
  im.halt();
  return answered;
}

}  // namespace docflow
