#include "io_pool.hpp"

#include <algorithm>

namespace docflow::serve {

IoPool::IoPool(int threads) {
  const int n = std::max(1, threads);
  for (int i = 0; i < n; ++i) {
    // Hint 1: one thread runs it, so what a handler queues goes on that
    // thread's own queue (no lock, no wake-up).
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    work_.emplace_back();
  }
}

IoPool::~IoPool() { stop(); }

boost::asio::io_context& IoPool::next() { return *contexts_[turn_.fetch_add(1) % contexts_.size()]; }

void IoPool::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    work_[i].emplace(contexts_[i]->get_executor());
    threads_.emplace_back([io = contexts_[i].get()] { io->run(); });
  }
}

void IoPool::release() {
  for (auto& w : work_) w.reset();
}

void IoPool::stop() {
  release();
  for (auto& io : contexts_) io->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace docflow::serve
