// The cost of a remote hop: one-document requests (msgpack) through three
// no-op executors in one `flow serve` process, against the same three as
// remote executors (`flow executor` processes on loopback) behind a `flow
// serve` front, beside the physical limit measured here: a plain TCP
// ping-pong of the same bytes on loopback, one connection, one message at a
// time.
//
//   bench_remote FLOW_EXE [--seconds 3] [--concurrency 1,16]
//
// Per hop = (remote p50 - local p50) / 3; the goal is a hop within 2x of
// the raw round trip. The front runs each remote executor once with one
// connection (replicas: 1) and once with four (replicas: 4: four requests
// in flight to each).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "docarray/envelope.hpp"
#include "load_generator.hpp"
#include "result_line.hpp"

namespace {

using namespace bench;

// An echo server on loopback: answers every message with the same number of
// bytes, for the raw round trip.
struct Echo {
  int listen_fd = -1, port = 0;
  std::thread thread;
  explicit Echo(std::size_t message) {
    listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd, 4);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this, message] {
      int fd = ::accept(listen_fd, nullptr, nullptr);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::vector<char> buf(message);
      while (true) {
        std::size_t got = 0;
        while (got < message) {
          ssize_t n = ::recv(fd, buf.data() + got, message - got, 0);
          if (n <= 0) {
            ::close(fd);
            return;
          }
          got += static_cast<std::size_t>(n);
        }
        if (::send(fd, buf.data(), message, MSG_NOSIGNAL) <= 0) break;
      }
      ::close(fd);
    });
  }
  ~Echo() {
    ::shutdown(listen_fd, SHUT_RDWR);
    ::close(listen_fd);
    thread.join();
  }
};

// Round trips of `message` bytes for `seconds`: p50 and p99 in ms.
Point ping_pong(int port, std::size_t message, double seconds) {
  int fd = connect_to(port);
  std::string out(message, 'x'), in(message, '\0');
  std::vector<double> lat;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int i = 0; i < 2000000 && Clock::now() < end; ++i) {
    const auto t0 = Clock::now();
    if (::send(fd, out.data(), message, MSG_NOSIGNAL) <= 0) break;
    std::size_t got = 0;
    while (got < message) {
      ssize_t n = ::recv(fd, in.data() + got, message - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got < message) break;  // the echo is gone: not a round trip
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  ::close(fd);
  std::sort(lat.begin(), lat.end());
  Point p;
  if (lat.empty()) return p;
  p.rps = lat.size() / seconds;
  p.p50_ms = lat[lat.size() / 2];
  p.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_remote FLOW_EXE [--seconds S] [--concurrency 1,16]\n");
    return 2;
  }
  const std::string flow_exe = argv[1];
  const LoadArgs args = parse_load_args(argc, argv, 2, LoadArgs{3, {1, 16}});
  const double seconds = args.seconds;
  const std::vector<int>& concurrency = args.concurrency;
  const std::string dir = "/tmp/docflow-bench-remote-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string plugins = BENCH_PLUGIN_DIR, workspace = dir + "/runs";

  docarray::Value fields = docarray::Value::map();
  fields["exec_endpoint"] = "/index";
  docarray::DocumentArray one;
  docarray::Document d("doc");
  d.text = "a pair of trousers";
  one.append(d);
  const std::string request = post_request("/post", docarray::to_msgpack_envelope(fields, one), "application/x-msgpack");

  // Three no-op executors in one process.
  std::ofstream(dir + "/local.yml") << "jtype: Flow\nwith: {name: local, workspace: " << workspace << ", prefetch: 64, plugins: ["
                                    << plugins << "]}\nexecutors:\n  - {name: a, uses: Nothing}\n  - {name: b, uses: Nothing}\n"
                                    << "  - {name: c, uses: Nothing}\n";
  const int local_port = free_port();
  pid_t local = spawn({flow_exe, "serve", dir + "/local.yml", "--port", std::to_string(local_port)});
  // The same three, each a `flow executor`, behind a front.
  std::vector<pid_t> remotes;
  std::vector<int> ports;
  for (const char* name : {"a", "b", "c"}) {
    ports.push_back(free_port());
    remotes.push_back(spawn({flow_exe, "executor", "--uses", "Nothing", "--plugins", plugins, "--name", std::string("hop-") + name,
                             "--workspace", workspace, "--port", std::to_string(ports.back())}));
  }
  for (int p : ports)
    if (!wait_healthy(p, 30)) std::fprintf(stderr, "bench_remote: an executor on port %d did not come up\n", p);
  auto front_flow = [&](const std::string& file, int replicas) {
    std::ofstream out(file);
    out << "jtype: Flow\nwith: {name: front, workspace: " << workspace << ", prefetch: 64}\nexecutors:\n";
    for (std::size_t i = 0; i < 3; ++i)
      out << "  - {name: e" << i << ", host: 127.0.0.1, port: " << ports[i] << ", replicas: " << replicas << "}\n";
  };
  front_flow(dir + "/front1.yml", 1);
  front_flow(dir + "/front4.yml", 4);
  const int front_port = free_port(), front4_port = free_port();
  pid_t front = spawn({flow_exe, "serve", dir + "/front1.yml", "--port", std::to_string(front_port), "--name", "front1"});
  pid_t front4 = spawn({flow_exe, "serve", dir + "/front4.yml", "--port", std::to_string(front4_port), "--name", "front4"});
  if (!wait_healthy(local_port, 30) || !wait_healthy(front_port, 30) || !wait_healthy(front4_port, 30)) {
    std::fprintf(stderr, "bench_remote: a flow did not come up\n");
    for (pid_t p : remotes) stop(p);
    stop(local);
    stop(front);
    stop(front4);
    return 1;
  }
  // The raw round trip of the same bytes.
  Point raw;
  {
    Echo echo(request.size());
    raw = ping_pong(echo.port, request.size(), seconds);
  }
  std::printf("remote hops: one document, msgpack (%zu-byte requests), %.0f s per point, %u cores\n\n", request.size(), seconds,
              std::thread::hardware_concurrency());
  std::printf("raw TCP ping-pong on loopback, %zu bytes each way: p50 %.3f ms, p99 %.3f ms (%.0f round trips/s)\n\n",
              request.size(), raw.p50_ms, raw.p99_ms, raw.rps);
  std::printf("%5s | %12s %8s %8s | %12s %8s %8s | %12s %10s | %12s %8s %8s\n", "conc", "in-process/s", "p50 ms", "p99 ms",
              "remote/s", "p50 ms", "p99 ms", "per hop ms", "hop / raw", "4 conns/s", "p50 ms", "p99 ms");
  for (int c : concurrency) {
    const Point l = load(local_port, request, c, seconds), r = load(front_port, request, c, seconds),
                r4 = load(front4_port, request, c, seconds);
    const double hop = (r.p50_ms - l.p50_ms) / 3;
    std::printf("%5d | %12.0f %8.3f %8.3f | %12.0f %8.3f %8.3f | %12.3f %9.1fx | %12.0f %8.3f %8.3f%s\n", c, l.rps, l.p50_ms,
                l.p99_ms, r.rps, r.p50_ms, r.p99_ms, hop, raw.p50_ms > 0 ? hop / raw.p50_ms : 0, r4.rps, r4.p50_ms, r4.p99_ms,
                l.errors || r.errors || r4.errors ? "  (errors!)" : "");
    if (c == 1 && raw.p50_ms > 0)
      bench::result("a remote hop, one document, concurrency 1", bench::figure(hop, "ms", 3),
                    "raw TCP round trip " + bench::figure(raw.p50_ms, "ms", 3), hop / raw.p50_ms, 2.0, bench::Goal::AtMost);
    if (c > 1 && l.rps > 0)
      bench::result("3 remote no-ops against the same in one process, concurrency " + std::to_string(c),
                    bench::figure(r.rps, "req/s", 0), "in-process " + bench::figure(l.rps, "req/s", 0), r.rps / l.rps);
  }
  stop(front);
  stop(front4);
  stop(local);
  for (pid_t p : remotes) stop(p);
  std::filesystem::remove_all(dir);
  return 0;
}
