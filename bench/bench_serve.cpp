// Serving: requests per second and p50/p99 latency of `flow serve` against a
// FastAPI + uvicorn peer doing what Jina's HTTP gateway does per request
// (bench/serve_peer.py), both started here as processes and driven by the
// same closed-loop load generator (one keep-alive connection per client,
// one request at a time on each).
//
//   bench_serve FLOW_EXE [--seconds 3] [--concurrency 1,16,64]
//
// Payloads: one document with a text; 64 documents with 512-float
// embeddings as JSON; the same 64 as msgpack (docflow only: the peer has no
// binary body, as Jina's HTTP gateway has none).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "docarray/envelope.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int free_port() {
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

int connect_to(int port) {
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
int exchange(int fd, const std::string& request, std::string& buf) {
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

Point load(int port, const std::string& request, int concurrency, double seconds) {
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

pid_t spawn(const std::vector<std::string>& argv) {
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

bool wait_healthy(int port, double seconds) {
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

void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

std::string http_post(const std::string& body, const std::string& type) {
  return "POST /post HTTP/1.1\r\nHost: bench\r\nContent-Type: " + type + "\r\nAccept: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_serve FLOW_EXE [--seconds S] [--concurrency 1,16,64]\n");
    return 2;
  }
  const std::string flow_exe = argv[1];
  double seconds = 3;
  std::vector<int> concurrency = {1, 16, 64};
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (k == "--concurrency") {
      concurrency.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string c; std::getline(ss, c, ',');) concurrency.push_back(std::stoi(c));
    }
  }

  // The payloads.
  docarray::Value fields = docarray::Value::map();
  fields["exec_endpoint"] = "/index";
  docarray::DocumentArray one, many;
  docarray::Document d;
  d.text = "a pair of trousers";
  one.append(d);
  at::manual_seed(0);
  for (int i = 0; i < 64; ++i) {
    docarray::Document e;
    e.text = "doc " + std::to_string(i);
    e.embedding = at::randn({512});
    many.append(std::move(e));
  }
  struct Payload {
    std::string name, request;
    bool peer;
  };
  const std::vector<Payload> payloads = {
      {"1 doc, JSON", http_post(docarray::to_json_envelope(fields, one), "application/json"), true},
      {"64 x 512-float, JSON", http_post(docarray::to_json_envelope(fields, many), "application/json"), true},
      {"64 x 512-float, msgpack", http_post(docarray::to_msgpack_envelope(fields, many), "application/x-msgpack"), false},
  };

  const int ours_port = free_port();
  pid_t ours = spawn({flow_exe, "serve", BENCH_DIR "/serve_noop.yml", "--name", "bench-serve-" + std::to_string(::getpid()),
                      "--port", std::to_string(ours_port), "--set", "with.workspace=/tmp/docflow-bench-serve"});
  const int peer_port = free_port();
  pid_t peer = spawn({"/usr/bin/python3", "-m", "uvicorn", "serve_peer:app", "--app-dir", BENCH_DIR, "--host", "127.0.0.1",
                      "--port", std::to_string(peer_port), "--log-level", "warning", "--no-access-log"});
  const bool ours_up = wait_healthy(ours_port, 30), peer_up = wait_healthy(peer_port, 30);
  if (!ours_up || !peer_up) {
    std::fprintf(stderr, "bench_serve: %s did not come up\n", !ours_up ? "flow serve" : "the uvicorn peer (python3-fastapi, python3-uvicorn)");
    stop(ours);
    stop(peer);
    return 1;
  }
  std::printf("serving: closed-loop clients, %.0f s per point, %u cores\n\n", seconds, std::thread::hardware_concurrency());
  std::printf("%-26s %5s | %10s %8s %8s | %10s %8s %8s | %7s %9s\n", "payload", "conc", "docflow/s", "p50 ms", "p99 ms", "peer/s",
              "p50 ms", "p99 ms", "rps x", "p99 peer/");
  std::vector<Point> json_many(concurrency.size());
  for (const auto& p : payloads) {
    for (std::size_t ci = 0; ci < concurrency.size(); ++ci) {
      const int c = concurrency[ci];
      Point o = load(ours_port, p.request, c, seconds);
      if (!p.peer) {
        std::printf("%-26s %5d | %10.0f %8.2f %8.2f | %10s %8s %8s | %7s %9s   msgpack/JSON: %.1fx rps\n", p.name.c_str(), c,
                    o.rps, o.p50_ms, o.p99_ms, "-", "-", "-", "-", "-", json_many[ci].rps > 0 ? o.rps / json_many[ci].rps : 0);
        continue;
      }
      Point t = load(peer_port, p.request, c, seconds);
      if (p.name.find("64") != std::string::npos) json_many[ci] = o;
      std::printf("%-26s %5d | %10.0f %8.2f %8.2f | %10.0f %8.2f %8.2f | %6.1fx %8.1fx%s\n", p.name.c_str(), c, o.rps, o.p50_ms,
                  o.p99_ms, t.rps, t.p50_ms, t.p99_ms, t.rps > 0 ? o.rps / t.rps : 0, o.p99_ms > 0 ? t.p99_ms / o.p99_ms : 0,
                  o.errors || t.errors ? "  (errors!)" : "");
    }
  }
  stop(ours);
  stop(peer);
  return 0;
}
