#pragma once
// Ctrl-C and SIGTERM for the commands that run until stopped (`flow run`,
// `flow serve`): the handler only writes to a pipe (any thread may run it:
// OpenBLAS starts threads before main, so blocking signals cannot steer them
// to one thread); a watcher thread reads the pipe and calls `on_stop`.
#include <signal.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "docflow/error.hpp"

namespace docflow::cli {

inline int g_signal_pipe[2] = {-1, -1};

extern "C" inline void on_stop_signal(int sig) {
  unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
}

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void()> on_stop) {
    if (::pipe(g_signal_pipe) != 0) throw Error("cannot create the signal pipe");
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    // Also overrides the SIG_IGN a shell gives background jobs for SIGINT.
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    thread_ = std::thread([on_stop = std::move(on_stop)] {
      unsigned char byte = 0;
      while (::read(g_signal_pipe[0], &byte, 1) == 1) {
        if (byte == 0) return;  // our own wake-up at the end
        on_stop();
      }
    });
  }
  ~SignalWatcher() {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    unsigned char stop = 0;
    [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &stop, 1);
    thread_.join();
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::thread thread_;
};

}  // namespace docflow::cli
