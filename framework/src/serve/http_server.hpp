#pragma once
// HTTP/1.1 transport on Boost.Beast: accepting, framing, keep-alive,
// pipelining with answers in order per connection, and every bound a hostile
// client could push on (header and body sizes, connections, requests read
// ahead, idle and slow connections). What a request means is the
// RequestHandler's business (http_api.hpp); this file never looks inside one.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace docflow::serve {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
// Answers one request; callable once, from any thread.
using Reply = std::function<void(HttpResponse)>;

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual void handle(HttpRequest&& request, Reply reply) = 0;
};

struct ServerLimits {
  std::size_t header_bytes = 16 * 1024;
  std::size_t body_bytes = 64u << 20;
  std::size_t connections = 1024;
  std::size_t pipeline = 16;  // requests read ahead of their answers, per connection
  std::chrono::milliseconds idle{60000};   // keep-alive: waiting for a request's first byte
  std::chrono::milliseconds read{10000};   // from a request's first byte to its last (slowloris)
  std::chrono::milliseconds write{30000};  // a client that does not read its answers
};

struct TransportStats {
  std::atomic<std::uint64_t> bytes_in{0}, bytes_out{0}, connections_refused{0}, dropped_slow{0};
  std::atomic<std::int64_t> connections{0};
};

// A JSON error body: {"code": 413, "error": "Payload Too Large", "detail": "..."}.
HttpResponse error_response(http::status status, const std::string& detail, unsigned version = 11);

class Session;
class IoPool;

class HttpServer {
 public:
  // Listens on the pool's first io_context; each connection lives on the
  // next one in turn.
  HttpServer(IoPool& io, RequestHandler& handler, ServerLimits limits, TransportStats& stats);
  ~HttpServer();
  // Binds and starts accepting; throws docflow::Error naming the address.
  void listen(const std::string& host, int port);
  int port() const { return port_; }
  // Closes the listening socket; returns once it is closed (new
  // connections are refused from then on). The connections the kernel had
  // already completed but not yet handed over (the listen backlog) are
  // taken first and served as any other, so that closing does not reset
  // them with their requests unread: a graceful stop drains the handler
  // first, and they get its 503.
  void stop_accepting();
  // Closes every connection now (after the in-flight requests were answered).
  void close_connections();

 private:
  friend class Session;
  void accept();
  void adopt(boost::asio::ip::tcp::socket socket);  // a new connection's session
  void forget(Session* s);

  IoPool& io_;
  RequestHandler& handler_;
  ServerLimits limits_;
  TransportStats& stats_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::mutex mu_;
  std::map<Session*, std::weak_ptr<Session>> sessions_;
};

}  // namespace docflow::serve
