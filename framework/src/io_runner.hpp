#pragma once
// An io_context run by one thread, known to the code that runs on it.
// Work that arrives on such a thread (a request the gateway's network
// thread read, an answer a remote executor's connection read) may do its
// next I/O on the same io_context instead of handing it to another thread:
// on some machines a thread's wake-up costs more than a remote hop's own
// work (bench/RESULTS.md). The gateway's network threads
// (serve/io_pool.hpp) and the remote executors' shared thread
// (remote/shared_io_thread.hpp) are IoRunners.
//
// Objects that put sockets or timers on another runner's io_context (a
// remote executor's connections on a network thread) register an exit hook:
// it runs on the runner's thread once its io_context has stopped for good,
// before the io_context can be destroyed, so they never outlive it.
#include <boost/asio/io_context.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace docflow {

class IoRunner : public std::enable_shared_from_this<IoRunner> {
 public:
  static std::shared_ptr<IoRunner> create() { return std::shared_ptr<IoRunner>(new IoRunner()); }
  IoRunner(const IoRunner&) = delete;
  IoRunner& operator=(const IoRunner&) = delete;

  boost::asio::io_context& io() { return io_; }
  // The runner whose run() is on this thread's stack, or null.
  static IoRunner* current();
  // Runs the io_context on the calling thread until it stops or runs out
  // of work, then the exit hooks (on this thread). Once only.
  void run();
  bool on_this_thread() const;
  // Registers `hook` under `key` (replacing one there). False when run()
  // has already returned: the caller must clean up itself.
  bool at_exit(const void* key, std::function<void()> hook);
  void forget(const void* key);

 private:
  IoRunner() : io_(1) {}  // one thread runs it: what a handler queues needs no lock or wake-up
  boost::asio::io_context io_;
  mutable std::mutex mu_;
  std::thread::id thread_;
  bool finished_ = false;
  std::map<const void*, std::function<void()>> hooks_;
};

}  // namespace docflow
