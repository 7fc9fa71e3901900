#include "shared_io_thread.hpp"

#include <mutex>

namespace docflow::remote {

std::shared_ptr<SharedIoThread> SharedIoThread::get() {
  static std::mutex mu;
  static std::weak_ptr<SharedIoThread> current;
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<SharedIoThread> t = current.lock();
  if (!t) {
    t.reset(new SharedIoThread());
    current = t;
  }
  return t;
}

SharedIoThread::SharedIoThread() : io_(std::make_unique<boost::asio::io_context>(1)) {
  work_.emplace(io_->get_executor());
  thread_ = std::thread([io = io_.get()] { io->run(); });
}

SharedIoThread::~SharedIoThread() {
  work_.reset();
  if (on_this_thread()) {
    // The last user let go from a handler on this very thread: the thread
    // cannot be joined from itself, so it finishes on its own and the
    // io_context it runs is left to it (a handful of bytes, once).
    (void)io_.release();
    thread_.detach();
    return;
  }
  thread_.join();  // run() returns once every handler queued has run
}

}  // namespace docflow::remote
