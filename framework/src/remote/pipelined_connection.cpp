#include "pipelined_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>

#include "../serve/write_at_once.hpp"

namespace docflow::remote {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

PipelinedConnection::PipelinedConnection(net::io_context& io, std::string host, std::string port, int timeout_ms,
                                         std::size_t max_in_flight)
    : io_(io),
      host_(std::move(host)),
      port_(std::move(port)),
      timeout_(timeout_ms),
      max_in_flight_(std::max<std::size_t>(1, max_in_flight)),
      resolver_(io),
      timer_(io) {}

PipelinedConnection::~PipelinedConnection() {
  boost::system::error_code ec;
  if (link_) link_->socket.close(ec);
}

void PipelinedConnection::send(http::request<http::string_body> request, OnAnswer on_answer) {
  auto entry = std::make_shared<Entry>();
  entry->request = std::move(request);
  entry->on_answer = std::move(on_answer);
  queued_.push_back(std::move(entry));
  pump();
}

void PipelinedConnection::pump() {
  if (!link_) {
    if (outstanding() > 0) connect();
    return;
  }
  if (!open_) return;  // connecting
  write_next();
  read_next();
}

void PipelinedConnection::connect() {
  link_ = std::make_shared<Link>(io_);
  open_ = false;
  connect_deadline_ = Clock::now() + timeout_;
  arm_timer();
  resolver_.async_resolve(host_, port_, [self = shared_from_this(), link = link_](const boost::system::error_code& ec,
                                                                                    tcp::resolver::results_type results) {
    if (link != self->link_) return;
    if (ec) return self->close("cannot connect to " + self->url() + ": " + ec.message());
    net::async_connect(link->socket, results, [self, link](const boost::system::error_code& ec, const tcp::endpoint&) {
      if (link != self->link_) return;
      if (ec) return self->close("cannot connect to " + self->url() + ": " + ec.message());
      boost::system::error_code ignored;
      link->socket.set_option(tcp::no_delay(true), ignored);
      link->socket.non_blocking(true, ignored);  // for the writes tried at once (write_next)
      self->open_ = true;
      self->arm_timer();
      self->pump();
    });
  });
}

void PipelinedConnection::write_next() {
  if (writing_ || queued_.empty() || written_.size() >= max_in_flight_) return;
  EntryPtr e = std::move(queued_.front());
  queued_.pop_front();
  e->deadline = Clock::now() + timeout_;
  written_.push_back(e);
  if (written_.size() == 1) arm_timer();
  writing_ = true;
  // At once; only what the socket does not take goes through an async write.
  e->serializer.emplace(e->request);
  boost::system::error_code ec;
  serve::write_at_once(link_->socket, *e->serializer, ec);
  if (ec) {
    // Failed: handled as an async failure is, after this call returns
    // (closing calls back, which may send again).
    net::post(io_, [self = shared_from_this(), link = link_, ec] { self->wrote(link, ec); });
    return;
  }
  if (e->serializer->is_done()) return wrote(link_, ec);
  http::async_write(link_->socket, *e->serializer,
                    [self = shared_from_this(), link = link_, e](const boost::system::error_code& ec, std::size_t) {
                      self->wrote(link, ec);
                    });
}

void PipelinedConnection::wrote(const LinkPtr& link, const boost::system::error_code& ec) {
  if (link != link_) return;
  writing_ = false;
  if (ec) return close("the connection to " + url() + " was lost: " + ec.message());
  pump();
}

void PipelinedConnection::read_next() {
  if (reading_ || written_.empty()) return;
  reading_ = true;
  auto parser = std::make_shared<http::response_parser<http::string_body>>();
  parser->body_limit(boost::none);  // the answer is as large as the server made it
  parser->header_limit(1 << 20);
  http::async_read(link_->socket, link_->buffer, *parser,
                   [self = shared_from_this(), link = link_, parser](const boost::system::error_code& ec, std::size_t) {
                     if (link != self->link_) return;
                     self->reading_ = false;
                     if (ec)
                       return self->close("the connection to " + self->url() + " was lost while waiting for an answer: " +
                                          ec.message());
                     http::response<http::string_body> res = parser->release();
                     EntryPtr e = std::move(self->written_.front());
                     self->written_.pop_front();
                     // The next answer gets its own time from now: the server
                     // answers in order, so it could not come earlier.
                     if (!self->written_.empty())
                       self->written_.front()->deadline = std::max(self->written_.front()->deadline, Clock::now() + self->timeout_);
                     self->arm_timer();
                     if (!res.keep_alive()) self->close("the server at " + self->url() + " closed the connection");
                     Answer a;
                     a.status = static_cast<int>(res.result_int());
                     a.sent = true;
                     a.body = std::move(res.body());
                     e->on_answer(std::move(a));
                     self->pump();
                   });
}

void PipelinedConnection::arm_timer() {
  Clock::time_point deadline;
  if (link_ && !open_) deadline = connect_deadline_;
  else if (!written_.empty()) deadline = written_.front()->deadline;
  else return;  // nothing to wait for: a pending wait finds that out when it ends
  if (timer_pending_ && armed_at_ <= deadline) return;
  timer_pending_ = true;
  armed_at_ = deadline;
  timer_.expires_at(deadline);  // cancels a later wait, whose handler sees it was aborted
  timer_.async_wait([self = shared_from_this(), link = link_](const boost::system::error_code& ec) {
    if (ec == net::error::operation_aborted) return;
    self->timer_pending_ = false;
    if (link != self->link_) return self->arm_timer();  // a new connection's deadline, if any
    self->on_timer();
  });
}

void PipelinedConnection::on_timer() {
  const auto now = Clock::now();
  const std::string ms = std::to_string(timeout_.count()) + " ms";
  if (link_ && !open_) {
    if (now >= connect_deadline_) close("cannot connect to " + url() + ": no connection within " + ms);
    else arm_timer();
  } else if (!written_.empty()) {
    if (now >= written_.front()->deadline) close(url() + " did not answer within timeout_send (" + ms + ")", true);
    else arm_timer();
  }
}

void PipelinedConnection::close(const std::string& why, bool timed_out) {
  if (link_) {
    boost::system::error_code ignored;
    link_->socket.close(ignored);
    link_.reset();
  }
  open_ = writing_ = reading_ = false;
  resolver_.cancel();
  timer_.cancel();
  timer_pending_ = false;
  // Taken out first: a callback may send again (a retry), on a new connection.
  std::deque<EntryPtr> written = std::move(written_), queued = std::move(queued_);
  written_.clear();
  queued_.clear();
  // Only the oldest ran out of time; those behind it waited for it (answers
  // come in order) and may go again.
  for (std::size_t i = 0; i < written.size(); ++i)
    written[i]->on_answer(Answer{0, true, timed_out && i == 0, {},
                                 timed_out && i > 0 ? "the connection was closed after an earlier request timed out" : why});
  for (auto& e : queued) e->on_answer(Answer{0, false, false, {}, why});
}

}  // namespace docflow::remote
