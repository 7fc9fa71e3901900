#pragma once
// The io thread that a flow's remote executors share (RemoteOptions::io).
// One thread for all of them means that when one remote executor's answer
// arrives and the request goes on to the next remote executor, the next
// send starts right there, in the answer's handler, instead of being
// handed to another executor's io thread (a wake-up per hop, about a fifth
// of a loopback hop here: bench/RESULTS.md).
//
// Lifetime: the flow stops it (stop(): the thread runs what is queued,
// then ends) after closing its executors and before destroying them; the
// executors hold it too, so the io_context outlives their sockets.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <mutex>
#include <thread>
#include <utility>

namespace docflow::remote {

class RemoteIo {
 public:
  RemoteIo() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~RemoteIo() { stop(); }
  RemoteIo(const RemoteIo&) = delete;
  RemoteIo& operator=(const RemoteIo&) = delete;

  boost::asio::io_context& context() { return io_; }
  bool running_here() const { return std::this_thread::get_id() == thread_id_; }

  // Queues fn on the thread unless stop() has begun; false then (fn will
  // not run).
  template <typename F>
  bool post_if_running(F&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    boost::asio::post(io_, std::forward<F>(fn));
    return true;
  }

  // Lets the thread finish what is queued (cancelled operations' handlers
  // included), then joins it. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    work_.reset();
    if (!thread_.joinable()) return;
    if (running_here()) thread_.detach();  // its last user went away in one of its handlers: it ends by itself
    else thread_.join();
  }

 private:
  boost::asio::io_context io_;
  std::mutex mu_;
  bool stopping_ = false;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  const std::thread::id thread_id_ = thread_.get_id();
};

}  // namespace docflow::remote
