#pragma once
// What the serving benchmarks share: processes started and stopped, and a
// closed-loop HTTP load generator (one keep-alive connection per client,
// one request at a time on each; latency per request, p50/p99, errors).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// One request, one answer on a kept-alive connection; the HTTP status, or
// -1 when the connection failed.
inline int exchange(int fd, const std::string& request, std::string& buf) {
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return -1;
    sent += static_cast<std::size_t>(n);
  }
  buf.clear();
  char chunk[65536];
  std::size_t header_end = std::string::npos, need = 0;
  while (true) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return -1;
    buf.append(chunk, static_cast<std::size_t>(n));
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      std::string head = buf.substr(0, header_end);
      for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto cl = head.find("content-length:");
      if (cl == std::string::npos) return -1;
      need = header_end + 4 + std::stoul(head.substr(cl + 15));
    }
    if (buf.size() >= need) return std::stoi(buf.substr(9, 3));
  }
}

struct Point {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  std::size_t errors = 0;
};

inline Point load(int port, const std::string& request, int concurrency, double seconds) {
  std::vector<std::vector<double>> latencies(concurrency);
  std::atomic<std::size_t> errors{0};
  std::atomic<bool> go{false};
  const auto deadline_after = std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  Clock::time_point start;
  for (int c = 0; c < concurrency; ++c)
    threads.emplace_back([&, c] {
      int fd = connect_to(port);
      std::string buf;
      while (!go) std::this_thread::yield();
      const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(deadline_after);
      for (std::size_t i = 0; i < 2000000 && Clock::now() < deadline; ++i) {
        if (fd < 0) {
          ++errors;
          break;
        }
        const auto t0 = Clock::now();
        const int status = exchange(fd, request, buf);
        if (status != 200) {
          ++errors;
          ::close(fd);
          fd = connect_to(port);
          continue;
        }
        latencies[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      if (fd >= 0) ::close(fd);
    });
  start = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Point p;
  p.errors = errors;
  if (all.empty()) return p;
  p.rps = all.size() / elapsed;
  p.p50_ms = all[all.size() / 2];
  p.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return p;
}

inline pid_t spawn(const std::vector<std::string>& argv) {
  std::fflush(nullptr);  // or the child's freopen flushes this process's buffered output a second time
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout)) _exit(127);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

inline bool wait_healthy(int port, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < deadline) {
    int fd = connect_to(port);
    if (fd >= 0) {
      std::string buf;
      const int s = exchange(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", buf);
      ::close(fd);
      if (s == 200) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

inline void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// The load options every serving benchmark takes after its own positional
// arguments: --seconds S (per point) and --concurrency 1,16,...; any other
// --KEY VALUE goes to `other`, which returns false for a key it does not know.
struct LoadArgs {
  double seconds = 3;
  std::vector<int> concurrency;
};

inline LoadArgs parse_load_args(int argc, char** argv, int first, LoadArgs args,
                                const std::function<bool(const std::string&, const std::string&)>& other = {}) {
  for (int i = first; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--seconds") {
      args.seconds = std::stod(value);
    } else if (key == "--concurrency") {
      args.concurrency.clear();
      std::stringstream ss(value);
      for (std::string c; std::getline(ss, c, ',');) args.concurrency.push_back(std::stoi(c));
    } else if (!other || !other(key, value)) {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return args;
}

// POST `target` with `body` of content type `type`, answered in the same type.
inline std::string post_request(const std::string& target, const std::string& body, const std::string& type) {
  return "POST " + target + " HTTP/1.1\r\nHost: bench\r\nContent-Type: " + type + "\r\nAccept: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace bench
