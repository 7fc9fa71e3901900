#pragma once
// A served flow on an ephemeral loopback port for the length of a test, and
// a raw socket to say to it what no well-behaved client would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "../support/temp_dir.hpp"
#include "docflow/flow.hpp"
#include "docflow/gateway.hpp"

namespace docflow::testing {

// `executors` is the YAML list under `executors:`; the test plugins are on the path.
inline std::string served_flow_yaml(const std::string& executors, const std::string& with = "") {
  return "jtype: Flow\nwith: {name: served, plugins: [" TEST_PLUGIN_DIR "]" + (with.empty() ? "" : ", " + with) +
         "}\nexecutors:\n" + executors;
}

class ServedFlow {
 public:
  explicit ServedFlow(const std::string& executors, GatewayOptions options = {}, const std::string& with = "")
      : flow_(Flow::from_config(parse_flow_text(served_flow_yaml(executors, with)))) {
    options.port = 0;
    options.host = "127.0.0.1";
    gateway_ = std::make_unique<Gateway>(flow_, options);
    flow_.open(dir_.path() / "executors");
    gateway_->start();
  }
  ~ServedFlow() {
    gateway_->stop(std::chrono::seconds(5));
    flow_.close();
  }
  std::string url() const { return gateway_->url(); }
  int port() const { return gateway_->port(); }
  Gateway& gateway() { return *gateway_; }
  Flow& flow() { return flow_; }

 private:
  TempDir dir_;
  Flow flow_;
  std::unique_ptr<Gateway> gateway_;
};

// A socket connected to 127.0.0.1:port whose reads give up after `timeout`;
// -1 when nothing listens there.
inline int connect_loopback(int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Connects to 127.0.0.1:port, sends `bytes` (in pieces `gap` apart when a
// gap is given), and returns everything the server wrote until it closed or
// `timeout` passed; kNoConnection when it could not connect.
inline const std::string kNoConnection = "<no connection>";
inline std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                bool half_close = false) {
  const int fd = connect_loopback(port, timeout);
  if (fd < 0) return kNoConnection;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// One kept-alive connection, one request and its answer at a time (no
// reconnects, no retries: what happens to the connection is visible).
class KeptAlive {
 public:
  explicit KeptAlive(int port) : fd_(connect_loopback(port, std::chrono::seconds(10))) {}
  ~KeptAlive() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The whole answer (head and Content-Length body), or "" when the
  // connection ended first.
  std::string exchange(const std::string& request) {
    if (fd_ < 0 || ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return "";
    std::string out;
    char buf[65536];
    while (true) {
      const auto head = out.find("\r\n\r\n");
      if (head != std::string::npos) {
        const auto cl = out.find("Content-Length: ");
        if (cl != std::string::npos && cl < head && out.size() >= head + 4 + std::stoul(out.substr(cl + 16))) return out;
      }
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return "";
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

inline std::string http_request(const std::string& method, const std::string& target, const std::string& body,
                                const std::string& content_type = "application/json", const std::string& extra_headers = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" +
         (body.empty() && method == "GET" ? "" : "Content-Type: " + content_type + "\r\n") +
         "Content-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

// The status code of the first response in `raw` (0 when there is none).
inline int status_of(const std::string& raw) {
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || raw.size() < 12) return 0;
  return std::stoi(raw.substr(9, 3));
}

inline std::string body_of(const std::string& raw) {
  auto p = raw.find("\r\n\r\n");
  return p == std::string::npos ? "" : raw.substr(p + 4);
}

}  // namespace docflow::testing
