#pragma once
// The gateway's network threads: one io_context per thread (as in most
// high-rate servers), each connection on one of them, chosen in turn as it
// is accepted. With one io_context run by several threads, every completion
// a thread queued (a read, a write, a cancelled timer, an answer) woke
// another one out of epoll_wait or its condition variable: 6 futex calls
// and 2-3 epoll interrupts per request on a `flow executor` (strace), and a
// remote hop at 0.15-0.22 ms against 0.10 ms with a single thread
// (bench_remote, bench/RESULTS.md). Here a connection's handlers run on its
// own thread, one after the other, with no strand and no hand-off; only
// work that comes from another thread (an answer computed on the flow's
// pool) wakes it. Each thread is an IoRunner (io_runner.hpp): a remote
// executor called on it sends from it.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "../io_runner.hpp"

namespace docflow::serve {

class IoPool {
 public:
  explicit IoPool(int threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // The first: for the listening sockets and what is not a connection's.
  boost::asio::io_context& first() { return runners_.front()->io(); }
  // The next in turn, for a new connection.
  boost::asio::io_context& next();
  // The io_context of the network thread this is called on; null on any
  // other thread. Work that stays on the thread it started on (a request's
  // timeout, the next queued request) wakes no other thread.
  boost::asio::io_context* current();
  void start();
  // Lets run() return once the queued work is done (nothing new is waited for).
  void release();
  // Stops every context now and joins the threads.
  void stop();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::shared_ptr<IoRunner>> runners_;
  std::vector<std::optional<Guard>> work_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> turn_{0};
};

}  // namespace docflow::serve
