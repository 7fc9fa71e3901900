#include "io_pool.hpp"

#include <algorithm>

namespace docflow::serve {

IoPool::IoPool(int threads) {
  const int n = std::max(1, threads);
  for (int i = 0; i < n; ++i) {
    runners_.push_back(IoRunner::create());
    work_.emplace_back();
  }
}

IoPool::~IoPool() { stop(); }

boost::asio::io_context& IoPool::next() { return runners_[turn_.fetch_add(1) % runners_.size()]->io(); }

boost::asio::io_context* IoPool::current() {
  IoRunner* here = IoRunner::current();
  for (const auto& r : runners_)
    if (r.get() == here) return &r->io();
  return nullptr;
}

void IoPool::start() {
  for (std::size_t i = 0; i < runners_.size(); ++i) {
    work_[i].emplace(runners_[i]->io().get_executor());
    threads_.emplace_back([runner = runners_[i].get()] { runner->run(); });
  }
}

void IoPool::release() {
  for (auto& w : work_) w.reset();
}

void IoPool::stop() {
  release();
  for (auto& r : runners_) r->io().stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace docflow::serve
