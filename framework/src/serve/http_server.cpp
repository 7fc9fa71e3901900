#include "http_server.hpp"
#include "io_pool.hpp"
#include "write_at_once.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <nlohmann/json.hpp>

#include <deque>
#include <future>
#include <optional>

#include "docarray/utf8.hpp"
#include "docflow/error.hpp"

namespace docflow::serve {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

HttpResponse error_response(http::status status, const std::string& detail, unsigned version) {
  HttpResponse res{status, version};
  nlohmann::ordered_json j;
  j["code"] = static_cast<int>(status);
  j["error"] = std::string(http::obsolete_reason(status));
  j["detail"] = docarray::escape_invalid_utf8(detail);
  res.set(http::field::content_type, "application/json");
  res.body() = j.dump();
  res.prepare_payload();
  return res;
}

// One connection. Everything runs on the connection's thread (its
// io_context has one, io_pool.hpp). Requests are
// read ahead (up to `pipeline`) while earlier ones are being answered; the
// answers go out in the order the requests came.
//
// A request costs as few system calls and event-loop rounds as it can (on
// some machines a system call costs a microsecond, bench/RESULTS.md): an
// answer is written at once on the non-blocking socket and only what the
// socket does not take goes through an async write (write_at_once.hpp), and the idle
// timer is armed once and checked when it fires, not cancelled (another
// round) and armed again for every request.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)),
        buffer_(server.limits_.header_bytes + server.limits_.body_bytes + 65536), idle_timer_(stream_.get_executor()) {
    beast::error_code ec;
    stream_.socket().non_blocking(true, ec);  // for the writes tried at once (they never wait)
  }

  ~Session() {
    server_.stats_.connections.fetch_sub(1);
    server_.forget(this);
  }

  void start() { net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_next(); }); }

  // From any thread.
  void close() { net::post(stream_.get_executor(), [self = shared_from_this()] { self->shut(); }); }

  // Refuses the connection (over the limit) with a 503 and closes it.
  void refuse(const std::string& why) {
    auto self = shared_from_this();
    net::dispatch(stream_.get_executor(), [self, why] {
      self->slots_.push_back(std::make_shared<Slot>());
      HttpResponse res = error_response(http::status::service_unavailable, why);
      res.set(http::field::retry_after, "1");
      self->fill(self->slots_.back(), std::move(res), true);
    });
  }

 private:
  struct Slot {
    std::optional<HttpResponse> response;
    std::optional<http::response_serializer<http::string_body>> serializer;  // of `response`, while it is written
    bool close_after = false;
  };

  void read_next() {
    if (reading_ || closing_ || slots_.size() >= server_.limits_.pipeline) return;
    reading_ = true;
    if (buffer_.size() == 0) {
      // Waiting for the first byte of the next request: no deadline on the
      // read itself (a Beast timeout closes the socket, which would cut the
      // answers still being computed for earlier requests); the idle timer
      // runs only while nothing is in flight. Once the first byte is here,
      // the whole request must arrive within the read timeout.
      stream_.expires_never();
      waiting_first_byte_ = true;
      if (slots_.empty()) {
        idle_since_ = std::chrono::steady_clock::now();
        arm_idle();
      }
      stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->waiting_first_byte_ = false;
        self->buffer_.commit(n);
        self->server_.stats_.bytes_in.fetch_add(n);
        if (ec) return self->on_read_error(ec, false);
        self->read_request();
      });
    } else {
      read_request();
    }
  }

  // A kept-alive connection with nothing in flight and no request coming
  // is closed after the idle timeout, counted from `idle_since_`. One wait
  // at a time: when it ends, the connection is closed if it has been idle
  // that long, else waited for again if it is idle now.
  void arm_idle() {
    if (idle_armed_ || shut_) return;
    idle_armed_ = true;
    idle_timer_.expires_at(idle_since_ + server_.limits_.idle);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      self->idle_armed_ = false;
      if (ec || !self->waiting_first_byte_ || !self->slots_.empty()) return;
      if (std::chrono::steady_clock::now() >= self->idle_since_ + self->server_.limits_.idle) return self->shut();
      self->arm_idle();
    });
  }

  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.header_bytes));
    parser_->body_limit(server_.limits_.body_bytes);
    // A request already whole in the buffer (a small one arrives in one
    // read) is parsed here: async_read would post its completion as a
    // handler of its own, with a read timer armed and cancelled around it.
    if (buffer_.size() > 0) {
      beast::error_code ec;
      while (buffer_.size() > 0 && !parser_->is_done()) {
        const std::size_t used = parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == http::error::need_more) {
          ec = {};
          break;
        }
        if (ec || used == 0) break;
      }
      if (ec) return on_read_error(ec, true);
      if (parser_->is_done()) return on_request();
    }
    stream_.expires_after(server_.limits_.read);
    const std::size_t before = buffer_.size();
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this(), before](beast::error_code ec, std::size_t n) {
      if (n > before) self->server_.stats_.bytes_in.fetch_add(n - before);
      if (ec) return self->on_read_error(ec, true);
      self->on_request();
    });
  }

  void on_read_error(beast::error_code ec, bool started) {
    reading_ = false;
    if (shut_) return;  // closed on purpose (idle, stop): nothing to answer
    closing_ = true;  // no request is read after a broken one
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset) {
      if (slots_.empty()) shut();
      return;
    }
    if (ec == beast::error::timeout) {
      // Idle keep-alive connections simply end; a request that did not
      // arrive within the read timeout is a slow (or slowloris) client.
      if (started) server_.stats_.dropped_slow.fetch_add(1);
      if (!started && slots_.empty()) return shut();
      if (!started) return;
      answer_error(http::status::request_timeout,
                   "the request did not arrive within " + std::to_string(server_.limits_.read.count()) + " ms");
      return;
    }
    if (ec == http::error::body_limit) {
      answer_error(http::status::payload_too_large,
                   "the body is larger than the limit of " + std::to_string(server_.limits_.body_bytes) +
                       " bytes (flow serve --max-body-bytes)");
    } else if (ec == http::error::header_limit) {
      answer_error(http::status::request_header_fields_too_large,
                   "the request's headers are larger than the limit of " + std::to_string(server_.limits_.header_bytes) +
                       " bytes");
    } else if (ec == http::error::partial_message || ec == http::error::short_read) {
      if (slots_.empty()) shut();
    } else {
      answer_error(http::status::bad_request, "malformed HTTP request: " + ec.message());
    }
  }

  void answer_error(http::status status, const std::string& detail) {
    slots_.push_back(std::make_shared<Slot>());
    fill(slots_.back(), error_response(status, detail), true);
  }

  void on_request() {
    reading_ = false;
    HttpRequest req = parser_->release();
    parser_.reset();
    auto slot = std::make_shared<Slot>();
    slot->close_after = !req.keep_alive();
    if (slot->close_after) closing_ = true;
    slots_.push_back(slot);
    const unsigned version = req.version();
    auto self = shared_from_this();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Reply reply = [self, slot, version, answered](HttpResponse res) {
      if (answered->exchange(true)) return;
      res.version(version);
      net::post(self->stream_.get_executor(), [self, slot, res = std::move(res)]() mutable {
        self->fill(slot, std::move(res), false);
      });
    };
    try {
      server_.handler_.handle(std::move(req), reply);
    } catch (const std::exception& e) {
      reply(error_response(http::status::internal_server_error, std::string("the gateway failed: ") + e.what()));
    }
    read_next();
  }

  void fill(const std::shared_ptr<Slot>& slot, HttpResponse res, bool close_after) {
    if (close_after || slot->close_after || !res.keep_alive()) {
      slot->close_after = true;
      closing_ = true;
    }
    res.keep_alive(!slot->close_after);
    slot->response = std::move(res);
    write_next();
  }

  void write_next() {
    if (writing_ || slots_.empty() || !slots_.front()->response) return;
    writing_ = true;
    Slot& slot = *slots_.front();
    slot.serializer.emplace(*slot.response);
    beast::error_code ec;
    const std::size_t n = write_at_once(stream_.socket(), *slot.serializer, ec);
    if (ec || slot.serializer->is_done()) return wrote(ec, n);
    // The socket's buffer is full: the rest when it has room, within the write timeout.
    stream_.expires_after(server_.limits_.write);
    http::async_write(stream_, *slot.serializer, [self = shared_from_this(), n](beast::error_code ec, std::size_t more) {
      self->wrote(ec, n + more);
    });
  }

  void wrote(beast::error_code ec, std::size_t n) {
    server_.stats_.bytes_out.fetch_add(n);
    writing_ = false;
    const bool close = slots_.front()->close_after;
    slots_.pop_front();
    if (ec || close) return shut();
    if (slots_.empty() && waiting_first_byte_) {
      idle_since_ = std::chrono::steady_clock::now();
      arm_idle();
    }
    write_next();
    if (slots_.empty() && closing_ && !reading_) return shut();
    read_next();
  }

  void shut() {
    if (shut_) return;
    shut_ = true;
    closing_ = true;
    idle_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  HttpServer& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::shared_ptr<Slot>> slots_;
  net::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point idle_since_{};  // nothing in flight since then
  bool reading_ = false, writing_ = false, closing_ = false, shut_ = false, waiting_first_byte_ = false, idle_armed_ = false;
};

HttpServer::HttpServer(IoPool& io, RequestHandler& handler, ServerLimits limits, TransportStats& stats)
    : io_(io), handler_(handler), limits_(limits), stats_(stats), acceptor_(io.first()) {}

HttpServer::~HttpServer() = default;

void HttpServer::listen(const std::string& host, int port) {
  const std::string where = host + ":" + std::to_string(port);
  beast::error_code ec;
  tcp::resolver resolver(io_.first());
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || results.empty()) throw Error("cannot resolve the address to serve on, " + where + ": " + ec.message());
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw Error("cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  accept();
}

void HttpServer::accept() {
  acceptor_.async_accept(io_.next(), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) adopt(std::move(socket));
    accept();
  });
}

void HttpServer::adopt(tcp::socket socket) {
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  const bool over = static_cast<std::size_t>(stats_.connections.fetch_add(1)) >= limits_.connections;
  auto session = std::make_shared<Session>(*this, std::move(socket));
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_[session.get()] = session;
  }
  if (over) {
    stats_.connections_refused.fetch_add(1);
    session->refuse("too many connections (the limit is " + std::to_string(limits_.connections) +
                    ", flow serve --max-connections)");
  } else {
    session->start();
  }
}

void HttpServer::forget(Session* s) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(s);
}

void HttpServer::stop_accepting() {
  // On the acceptor's thread (an accept may be completing there), waited
  // for; when the network threads are gone, directly.
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  net::post(acceptor_.get_executor(), [this, closed] {
    // The backlog: connections whose clients have sent their request and
    // that closing the socket would reset unanswered (a test under load saw
    // one). Bounded, in case clients keep connecting faster than this.
    beast::error_code ec;
    acceptor_.non_blocking(true, ec);
    for (int i = 0; i < 1024 && !ec && acceptor_.is_open(); ++i) {
      tcp::socket socket(io_.next());
      acceptor_.accept(socket, ec);
      if (!ec) adopt(std::move(socket));
    }
    acceptor_.close(ec);
    closed->set_value();
  });
  if (done.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    beast::error_code ec;
    acceptor_.close(ec);
  }
}

void HttpServer::close_connections() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [p, weak] : sessions_)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->close();
}

}  // namespace docflow::serve
