#pragma once
// Jina's HTTP API over a flow: what each route means, the request and
// response bodies, admission into the flow (`prefetch` across connections),
// the per-request timeout, auth and CORS. The transport (http_server.hpp)
// hands it whole, size-checked requests.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "docflow/flow.hpp"
#include "docflow/gateway.hpp"
#include "http_server.hpp"
#include "metrics.hpp"

namespace docflow::serve {

class HttpApi : public RequestHandler {
 public:
  // The io_context of the network thread the caller is on, or null.
  using ThreadIo = std::function<boost::asio::io_context*()>;
  // After flow.open(): the executors' endpoints are known. `io` takes what
  // belongs to no network thread; `thread_io`, where given, lets a request's
  // timeout and the start of a queued request stay on the network thread
  // they come from instead of waking `io`'s thread for each.
  HttpApi(Flow& flow, const GatewayOptions& options, Metrics& metrics, boost::asio::io_context& io,
          ThreadIo thread_io = {});
  void handle(HttpRequest&& request, Reply reply) override;

  // Graceful shutdown: new requests get 503; wait_idle() returns true once
  // every accepted request was answered, false after `grace`.
  void drain();
  bool wait_idle(std::chrono::milliseconds grace);

  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  struct Call;
  using Respond = std::function<void(HttpResponse)>;

  void route(HttpRequest& req, const std::string& path, Respond& respond);
  void flow_call(HttpRequest& req, const std::string& endpoint, bool is_post, Respond& respond);
  void submit(std::shared_ptr<Call> call);
  void start(std::shared_ptr<Call> call);
  void finish(const std::shared_ptr<Call>& call, Response response);
  void release();
  std::string route_name(const std::string& path) const;
  std::string next_request_id();

  Flow& flow_;
  GatewayOptions options_;
  Metrics& metrics_;
  boost::asio::io_context& io_;
  ThreadIo thread_io_;
  boost::asio::io_context* this_thread_io() const;  // thread_io_'s answer, or null without one
  boost::asio::io_context& here();                  // this_thread_io(), or io_
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<std::string> endpoints_;  // the routes that post into the flow, sorted
  std::vector<std::string> executors_;
  bool searches_ = false;  // an executor binds /search: the flow has a search page at /ui
  bool any_endpoint_ = false;  // an executor binds "*" (Jina's @requests without `on`): /post takes any endpoint
  std::size_t prefetch_;

  std::mutex mu_;
  std::condition_variable idle_;
  bool draining_ = false;
  std::size_t in_flight_ = 0;   // in the flow
  std::size_t accepted_ = 0;    // in the flow or waiting for room, not yet answered
  std::size_t bytes_held_ = 0;  // their request bodies
  std::deque<std::shared_ptr<Call>> waiting_;
  std::uint64_t request_counter_ = 0;
  std::uint64_t id_seed_ = 0;
};

// Serves GET /metrics (Prometheus text format) on the monitoring port.
class MetricsApi : public RequestHandler {
 public:
  MetricsApi(const Metrics& metrics, const TransportStats& transport) : metrics_(metrics), transport_(transport) {}
  void handle(HttpRequest&& request, Reply reply) override;

 private:
  const Metrics& metrics_;
  const TransportStats& transport_;
};

}  // namespace docflow::serve
