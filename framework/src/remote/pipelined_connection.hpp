#pragma once
// One keep-alive HTTP/1.1 connection to a `flow executor` (or any served
// flow), driven asynchronously on an io_context: requests are written as
// they come, up to `max_in_flight` unanswered (the server reads ahead and
// works on them at once, answering in order), and the answers are read in
// order and handed to each request's callback. It holds no thread of its
// own: a request waiting for its answer costs a queue entry, not a blocked
// thread (what the synchronous docflow::Client costs).
//
// Every member runs on the io_context's one thread: call send() and close()
// from there (net::post to it). Callbacks run there too.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace docflow::remote {

namespace http = boost::beast::http;

struct Answer {
  int status = 0;     // 0: no answer came (`error` says why)
  bool sent = false;  // status 0: whether the request had been written (it may have run)
  bool timed_out = false;  // status 0: this request's own answer did not come in time
  std::string body;
  std::string error;
};
using OnAnswer = std::function<void(Answer)>;

class PipelinedConnection : public std::enable_shared_from_this<PipelinedConnection> {
 public:
  // `timeout_ms` bounds connecting and each answer (from the moment its
  // request is written, or the answer before it arrived, whichever is later).
  PipelinedConnection(boost::asio::io_context& io, std::string host, std::string port, int timeout_ms,
                      std::size_t max_in_flight);
  ~PipelinedConnection();
  PipelinedConnection(const PipelinedConnection&) = delete;
  PipelinedConnection& operator=(const PipelinedConnection&) = delete;

  void send(http::request<http::string_body> request, OnAnswer on_answer);
  // Closes the socket; every request not answered yet gets status 0 with
  // `why` (the oldest one marked timed out when `timed_out`).
  void close(const std::string& why, bool timed_out = false);
  // Requests sent or queued and not answered yet.
  std::size_t outstanding() const { return queued_.size() + written_.size(); }
  std::string url() const { return "http://" + host_ + ":" + port_; }

 private:
  struct Entry {
    http::request<http::string_body> request;
    OnAnswer on_answer;
    std::chrono::steady_clock::time_point deadline{};
    std::optional<http::request_serializer<http::string_body>> serializer;  // of `request`, while it is written
  };
  using EntryPtr = std::shared_ptr<Entry>;

  // One TCP connection's socket and read buffer. A close() drops it; the
  // operations it cancelled still hold it until their handlers ran, and
  // those handlers see that it is no longer the current one and do nothing.
  struct Link {
    explicit Link(boost::asio::io_context& io) : socket(io) {}
    boost::asio::ip::tcp::socket socket;
    boost::beast::flat_buffer buffer;
  };
  using LinkPtr = std::shared_ptr<Link>;

  void pump();
  void connect();
  void write_next();
  void wrote(const LinkPtr& link, const boost::system::error_code& ec);
  void read_next();
  void arm_timer();
  void on_timer();

  boost::asio::io_context& io_;
  std::string host_, port_;
  std::chrono::milliseconds timeout_;
  std::size_t max_in_flight_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  LinkPtr link_;  // null: closed
  bool open_ = false, writing_ = false, reading_ = false;
  // The timer's wait, when one is pending, ends at `armed_at_`. A later
  // deadline leaves it be (it re-arms when it fires, on_timer): re-arming
  // on every answer cost a cancelled handler and two timerfd updates per
  // request.
  bool timer_pending_ = false;
  std::chrono::steady_clock::time_point armed_at_{};
  std::chrono::steady_clock::time_point connect_deadline_{};
  std::deque<EntryPtr> queued_;   // not written yet
  std::deque<EntryPtr> written_;  // written, waiting for their answers, in order
};

}  // namespace docflow::remote
