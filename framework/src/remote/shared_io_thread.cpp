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

SharedIoThread::SharedIoThread() : runner_(IoRunner::create()) {
  work_.emplace(runner_->io().get_executor());
  thread_ = std::thread([runner = runner_] { runner->run(); });
}

SharedIoThread::~SharedIoThread() {
  work_.reset();
  if (on_this_thread()) {
    // The last user let go from a handler on this very thread: the thread
    // cannot be joined from itself, so it finishes on its own, holding the
    // runner it runs until then.
    thread_.detach();
    return;
  }
  thread_.join();  // run() returns once every handler queued has run
}

}  // namespace docflow::remote
