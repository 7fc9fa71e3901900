#include "docflow/executor.hpp"

namespace docflow {

Executor::Executor(ExecutorContext context) : context_(std::move(context)) {}
Executor::~Executor() = default;
Source::~Source() = default;

void Executor::on(const std::string& endpoint, Handler handler) { handlers_[endpoint] = std::move(handler); }

bool Executor::handles(const std::string& endpoint) const {
  return handlers_.count(endpoint) > 0 || handlers_.count("*") > 0;
}

std::vector<std::string> Executor::endpoints() const {
  std::vector<std::string> out;
  for (const auto& [endpoint, handler] : handlers_) out.push_back(endpoint);
  return out;
}

void Executor::handle(Request& request) {
  auto it = handlers_.find(request.endpoint);
  if (it == handlers_.end()) it = handlers_.find("*");
  if (it == handlers_.end()) return;  // not bound: pass through
  it->second(request);
}

void Executor::handle_async(Request& request, Done done) {
  std::exception_ptr error;
  try {
    handle(request);
  } catch (...) {
    error = std::current_exception();
  }
  done(error);
}

SharedRegistry& Executor::registry() const {
  if (!context_.registry) throw Error("executor '" + name() + "' runs without a shared registry");
  return *context_.registry;
}

Logger& Executor::log() const {
  static Logger fallback;
  return context_.logger ? *context_.logger : fallback;
}

ProcessGroup& Executor::group() const {
  static const std::shared_ptr<ProcessGroup> single = ProcessGroup::single();
  return context_.process_group ? *context_.process_group : *single;
}

void Source::save_state(const std::filesystem::path&) {
  throw Error("source '" + name() + "' cannot be checkpointed: it does not save its position (save_state/load_state); "
              "set the flow's `checkpoints: 0`");
}

void Source::load_state(const std::filesystem::path& dir) {
  throw Error("source '" + name() + "' cannot continue from " + dir.string() + ": it does not save its position");
}

}  // namespace docflow
