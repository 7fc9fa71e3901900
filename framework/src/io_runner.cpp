#include "io_runner.hpp"

namespace docflow {
namespace {
thread_local IoRunner* running_here = nullptr;
}

IoRunner* IoRunner::current() { return running_here; }

void IoRunner::run() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    thread_ = std::this_thread::get_id();
  }
  IoRunner* outer = running_here;
  running_here = this;
  try {
    io_.run();
  } catch (...) {
    running_here = outer;
    throw;
  }
  running_here = outer;
  std::map<const void*, std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    hooks.swap(hooks_);
  }
  for (auto& [key, hook] : hooks) hook();
}

bool IoRunner::on_this_thread() const {
  std::lock_guard<std::mutex> lock(mu_);
  return thread_ == std::this_thread::get_id();
}

bool IoRunner::at_exit(const void* key, std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return false;
  hooks_[key] = std::move(hook);
  return true;
}

void IoRunner::forget(const void* key) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.erase(key);
}

}  // namespace docflow
