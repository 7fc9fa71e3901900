#pragma once
// One io_context and its thread, shared by every remote executor of the
// process. A request that comes back from one remote executor goes on to
// the next one on the same thread: with an io thread per executor, every
// hop of a chain of remote executors woke another thread (15-25 us each on
// this machine, a tenth of a hop; bench/RESULTS.md). Jina's gateway, too,
// talks to all its executors from one event loop.
//
// Started by the first remote executor that asks for it, stopped (the
// thread joined) when the last one lets go of it.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <thread>

#include "../io_runner.hpp"

namespace docflow::remote {

class SharedIoThread {
 public:
  static std::shared_ptr<SharedIoThread> get();
  ~SharedIoThread();
  SharedIoThread(const SharedIoThread&) = delete;
  SharedIoThread& operator=(const SharedIoThread&) = delete;

  boost::asio::io_context& io() { return runner_->io(); }
  bool on_this_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  SharedIoThread();
  std::shared_ptr<IoRunner> runner_;  // shared with its thread, which may outlive this (see the destructor)
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
};

}  // namespace docflow::remote
