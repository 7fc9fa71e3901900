#include "isolated_executor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "docflow/error.hpp"
#include "docflow/isolation.hpp"
#include "docflow/logger.hpp"
#include "docflow/run.hpp"

namespace docflow {
namespace {

std::string& executable() {
  static std::string path;
  return path;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "stopped (status " + std::to_string(status) + ")";
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

void set_flow_executable(const std::string& path) { executable() = path; }
const std::string& flow_executable() { return executable(); }

IsolatedExecutor::IsolatedExecutor(ExecutorContext context, IsolationOptions options)
    : Executor(std::move(context)), options_(std::move(options)) {
  options_.timeout_ready_ms = limit_ms(options_.timeout_ready_ms);
  options_.timeout_send_ms = limit_ms(options_.timeout_send_ms);
}

IsolatedExecutor::~IsolatedExecutor() {
  try {
    close();
  } catch (...) {
  }
}

std::string IsolatedExecutor::output_tail() const {
  std::ifstream in(options_.dir / "process.log");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::string tail;
  for (std::size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) tail += (tail.empty() ? "" : " | ") + lines[i];
  return tail.empty() ? "" : "; its last output: " + tail;
}

// Called on the supervisor thread only: the child's parent-death signal
// follows the thread that forked it, and this one lives as long as the child.
pid_t IsolatedExecutor::spawn() {
  const std::string file = (options_.dir / "process.yml").string(), log = (options_.dir / "process.log").string();
  std::vector<std::string> args = {flow_executable(), "serve", file, "--host", "127.0.0.1", "--port", "0", "--name", "process"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start its process: fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);  // Ctrl-C at the terminal is the flow's to handle, not the child's
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);  // no socket or pipe of the flow's stays open in the child
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until the child serves (its run folder's status has its address),
// then connects a remote executor to it. `exited` says the child was reaped.
std::shared_ptr<RemoteExecutor> IsolatedExecutor::connect(pid_t pid, int& status, bool& exited) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ready_ms);
  const auto run = options_.dir / "runs";
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      throw Error("its process (pid " + std::to_string(pid) + ") " + describe(status) + " before it served" + output_tail());
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      if (stopping_) throw Error("stopped while starting");
    }
    try {
      const RunStatus s = RunFolder::open(run, "process").status();
      if (s.pid == pid && s.state == "SERVING" && !s.address.empty()) {
        ExecutorContext c = context();
        auto remote = std::make_shared<RemoteExecutor>(
            c, RemoteOptions{{s.address.substr(s.address.find("//") + 2)}, options_.timeout_ready_ms, options_.timeout_send_ms,
                             default_token()});  // the child's `flow serve` wants DOCFLOW_TOKEN when it is set
        remote->open();
        return remote;
      }
    } catch (const Error&) {
      // No run folder or status yet.
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error("its process (pid " + std::to_string(pid) + ") did not serve within timeout_ready (" +
                  std::to_string(options_.timeout_ready_ms) + " ms)" + output_tail());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void IsolatedExecutor::supervise() {
  for (;;) {
    pid_t pid = 0;
    int status = 0;
    bool exited = false;
    std::shared_ptr<RemoteExecutor> remote;
    std::string error;
    try {
      pid = spawn();
      {
        std::lock_guard<std::mutex> lock(m_);
        child_ = pid;
      }
      remote = connect(pid, status, exited);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (remote) {
      {
        std::lock_guard<std::mutex> lock(m_);
        remote_ = remote;
        state_ = State::Running;
        ++generation_;
      }
      cv_.notify_all();
      log().info(name(), "runs in its own process (pid " + std::to_string(pid) + ")");
      status = wait_for(pid);
    } else if (pid > 0 && !exited) {
      ::kill(pid, SIGKILL);
      wait_for(pid);
    }
    std::unique_lock<std::mutex> lock(m_);
    child_ = 0;
    if (stopping_) {
      state_ = State::Stopped;
      cv_.notify_all();
      return;
    }
    ++crashes_;
    last_death_ = remote ? "its process (pid " + std::to_string(pid) + ") " + describe(status) : error;
    // A child that never served the first time will not serve the second.
    if (generation_ == 0 || restarts_used_ >= options_.restarts) {
      failure_ = generation_ == 0 ? "did not start: " + last_death_
                                  : "crashed " + std::to_string(crashes_) + " times and is not started again (restarts: " +
                                        std::to_string(options_.restarts) + "); the last time " + last_death_;
      state_ = State::Failed;
      remote_.reset();
      cv_.notify_all();
      if (generation_ > 0) log().error(name(), failure_);
      return;
    }
    ++restarts_used_;
    state_ = State::Restarting;
    cv_.notify_all();
    const auto backoff = std::chrono::milliseconds(std::min(100 << std::min(restarts_used_ - 1, 6), 5000));
    log().error(name(), last_death_ + " (its output: " + (options_.dir / "process.log").string() + "); starting it again in " + std::to_string(backoff.count()) + " ms (restart " +
                            std::to_string(restarts_used_) + " of " + std::to_string(options_.restarts) + ")");
    if (cv_.wait_for(lock, backoff, [&] { return stopping_; })) {
      state_ = State::Stopped;
      cv_.notify_all();
      return;
    }
  }
}

void IsolatedExecutor::open() {
  if (flow_executable().empty())
    throw Error("`isolate` runs the executor in a `flow` process of its own, and this program does not know where `flow` is: "
                "use the flow command, or call docflow::set_flow_executable()");
  std::filesystem::create_directories(options_.dir);
  {
    std::ofstream f(options_.dir / "process.yml");
    f << options_.flow_yaml;
    if (!f.flush()) throw Error("cannot write " + (options_.dir / "process.yml").string());
  }
  supervisor_ = std::thread([this] { supervise(); });
  std::unique_lock<std::mutex> lock(m_);
  cv_.wait(lock, [&] { return state_ != State::Starting; });
  if (state_ != State::Running) {
    const std::string why = failure_;
    lock.unlock();
    close();
    throw Error(why);
  }
  for (const auto& e : remote_->endpoints())
    on(e, [this](Request& r) {
      int generation = 0;
      std::shared_ptr<RemoteExecutor> remote = current(generation);
      try {
        remote->handle(r);
      } catch (const std::exception&) {
        rethrow_as_crash(generation);
      }
    });
}

std::shared_ptr<RemoteExecutor> IsolatedExecutor::current(int& generation) {
  std::unique_lock<std::mutex> lock(m_);
  const auto ready = [&] { return state_ != State::Restarting && state_ != State::Starting; };
  if (!cv_.wait_for(lock, std::chrono::milliseconds(options_.timeout_ready_ms), ready))
    throw Error("is being started again after " + last_death_ + ", and did not come back within timeout_ready (" +
                std::to_string(options_.timeout_ready_ms) + " ms)");
  if (state_ == State::Failed) throw Error(failure_);
  if (state_ == State::Stopped) throw Error("is closed");
  generation = generation_;
  return remote_;
}

// A request that failed while the child died failed because it died: say
// so, rather than report the broken connection.
void IsolatedExecutor::rethrow_as_crash(int generation) {
  std::unique_lock<std::mutex> lock(m_);
  const bool died = cv_.wait_for(lock, std::chrono::seconds(2), [&] { return generation_ != generation || state_ != State::Running; });
  if (!died || state_ == State::Stopped) throw;
  throw Error("crashed while it held this request: " + last_death_ +
              (state_ == State::Failed ? "; it is not started again (restarts: " + std::to_string(options_.restarts) + ")"
                                       : "; it is being started again"));
}

void IsolatedExecutor::on_event(const Event& event) {
  int generation = 0;
  std::shared_ptr<RemoteExecutor> remote = current(generation);
  try {
    remote->on_event(event);
  } catch (const std::exception&) {
    rethrow_as_crash(generation);
  }
}

void IsolatedExecutor::close() {
  pid_t child = 0;
  {
    std::lock_guard<std::mutex> lock(m_);
    if (!supervisor_.joinable()) return;
    stopping_ = true;
    child = child_;
  }
  cv_.notify_all();
  // SIGTERM: `flow serve` closes its executor (an index flushes) and exits.
  if (child > 0) ::kill(child, SIGTERM);
  {
    std::unique_lock<std::mutex> lock(m_);
    // A child that stayed down (Failed) has no supervisor left to wait for.
    const auto ended = [&] { return state_ == State::Stopped || state_ == State::Failed; };
    if (!cv_.wait_for(lock, std::chrono::seconds(15), ended) && child_ > 0) ::kill(child_, SIGKILL);
  }
  supervisor_.join();
  remote_.reset();
}

}  // namespace docflow
