#pragma once
// A `flow serve` or `flow executor` started with --detach for the length of
// a test: its address and pid from the run folder's status.json, stopped
// (SIGTERM, or kill -9 when the test says) and waited for at the end.
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "run_command.hpp"

namespace docflow::testing {

class DetachedService {
 public:
  // `command` ends in --detach; `status_json` is its run folder's status.json.
  DetachedService(const std::string& command, const std::string& status_json) {
    auto r = run_command(command);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    std::ifstream in(status_json);
    const nlohmann::json status = nlohmann::json::parse(in);
    url_ = status["address"];
    address_ = url_.substr(url_.find("//") + 2);
    pid_ = status["pid"];
  }
  ~DetachedService() { stop(SIGTERM); }
  DetachedService(const DetachedService&) = delete;
  DetachedService& operator=(const DetachedService&) = delete;

  const std::string& url() const { return url_; }          // http://127.0.0.1:PORT
  const std::string& address() const { return address_; }  // 127.0.0.1:PORT
  int port() const { return std::stoi(address_.substr(address_.rfind(':') + 1)); }
  pid_t pid() const { return pid_; }

  // Sends `signal` and waits (10 s at most) until the process is gone; a
  // SIGTERM'd service closes its executors first.
  void stop(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    for (int i = 0; i < 200 && ::kill(pid_, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (::kill(pid_, 0) == 0) ::kill(pid_, SIGKILL);
    pid_ = 0;
  }

 private:
  std::string url_, address_;
  pid_t pid_ = 0;
};

}  // namespace docflow::testing
