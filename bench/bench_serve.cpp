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
#include "load_generator.hpp"
#include "result_line.hpp"

namespace {

using namespace bench;

std::string http_post(const std::string& body, const std::string& type) { return post_request("/post", body, type); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_serve FLOW_EXE [--seconds S] [--concurrency 1,16,64]\n");
    return 2;
  }
  const std::string flow_exe = argv[1];
  const LoadArgs args = parse_load_args(argc, argv, 2, LoadArgs{3, {1, 16, 64}});
  const double seconds = args.seconds;
  const std::vector<int>& concurrency = args.concurrency;

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
        if (c == 16 && json_many[ci].rps > 0)
          bench::result("serving " + p.name + " against JSON, concurrency 16", bench::figure(o.rps, "req/s", 0),
                        "JSON " + bench::figure(json_many[ci].rps, "req/s", 0), o.rps / json_many[ci].rps, 5.0);
        continue;
      }
      Point t = load(peer_port, p.request, c, seconds);
      if (p.name.find("64") != std::string::npos) json_many[ci] = o;
      std::printf("%-26s %5d | %10.0f %8.2f %8.2f | %10.0f %8.2f %8.2f | %6.1fx %8.1fx%s\n", p.name.c_str(), c, o.rps, o.p50_ms,
                  o.p99_ms, t.rps, t.p50_ms, t.p99_ms, t.rps > 0 ? o.rps / t.rps : 0, o.p99_ms > 0 ? t.p99_ms / o.p99_ms : 0,
                  o.errors || t.errors ? "  (errors!)" : "");
      // Issue 13's goals, at concurrency 16: 5x the requests/s, a fifth of the p99.
      const bool goal = c == 16;
      bench::result("serving " + p.name + ", concurrency " + std::to_string(c) + ", requests/s", bench::figure(o.rps, "req/s", 0),
                    "FastAPI + uvicorn " + bench::figure(t.rps, "req/s", 0), t.rps > 0 ? o.rps / t.rps : 0, goal ? 5.0 : 0);
      if (goal)
        bench::result("serving " + p.name + ", concurrency 16, p99 (peer's over docflow's)", bench::figure(o.p99_ms, "ms", 2),
                      "FastAPI + uvicorn " + bench::figure(t.p99_ms, "ms", 2), o.p99_ms > 0 ? t.p99_ms / o.p99_ms : 0, 5.0);
    }
  }
  stop(ours);
  stop(peer);
  return 0;
}
