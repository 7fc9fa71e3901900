#pragma once
// An executor in a child process (see docflow/isolation.hpp). A supervisor
// thread starts the child, waits for it to serve, and waits on it; when it
// dies unexpectedly, requests in flight fail naming the executor and how it
// died, later requests wait (up to timeout_ready) while it is started again
// after a backoff (100 ms, doubling, at most 5 s), and after `restarts`
// restarts it stays down: every request then fails saying so.
#include <sys/types.h>

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "../remote/remote_executor.hpp"

namespace docflow {

struct IsolationOptions {
  std::string flow_yaml;       // the one-executor flow the child serves
  std::filesystem::path dir;   // the child's flow file, output and run folder
  int restarts = 3;
  int timeout_ready_ms = 600000;
  int timeout_send_ms = 600000;
};

class IsolatedExecutor : public Executor {
 public:
  IsolatedExecutor(ExecutorContext context, IsolationOptions options);
  ~IsolatedExecutor() override;
  void open() override;
  void close() override;
  void on_event(const Event& event) override;

 private:
  enum class State { Starting, Running, Restarting, Failed, Stopped };
  void supervise();
  pid_t spawn();
  std::shared_ptr<RemoteExecutor> connect(pid_t pid, int& status, bool& exited);
  std::shared_ptr<RemoteExecutor> current(int& generation);
  [[noreturn]] void rethrow_as_crash(int generation);
  std::string output_tail() const;

  IsolationOptions options_;
  std::mutex m_;
  std::condition_variable cv_;
  State state_ = State::Starting;
  std::shared_ptr<RemoteExecutor> remote_;
  int generation_ = 0, restarts_used_ = 0, crashes_ = 0;
  pid_t child_ = 0;
  std::string last_death_, failure_;
  bool stopping_ = false;
  std::thread supervisor_;
};

}  // namespace docflow
