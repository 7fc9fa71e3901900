// Search over a sharded index: queries per second and p50/p99 of one query
// (a 512-float embedding, the top 10) through a `flow serve` front whose
// SimpleIndexer is 1, 2 or 4 remote shards (`flow executor` processes on
// loopback, polling ALL: every shard searches its part, the front merges by
// score), over the same random index (default 1M documents); and each
// shard's own cost, asked directly, for the on-paper model of more shards on
// more machines (bench/RESULTS.md).
//
//   bench_shards FLOW_EXE [--docs 1000000] [--dim 512] [--shards 1,2,4] [--seconds 3] [--concurrency 1,4]
//
// The index logs are written once per size under /tmp/docflow-bench-shards-DOCS-DIM
// (kept for the next run: about 2 GB per configuration at 1M x 512).
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "docarray/envelope.hpp"
#include "docflow/flow.hpp"
#include "load_generator.hpp"

namespace {

using namespace bench;
namespace fs = std::filesystem;

// Document i of the index: the same embedding whichever shard holds it.
docarray::DocumentArray documents(std::int64_t first, std::int64_t count, int dim, int shards, int shard) {
  at::Generator g = at::detail::createCPUGenerator(static_cast<std::uint64_t>(first) * 7919 + 1);
  const at::Tensor all = at::randn({count, dim}, g);
  docarray::DocumentArray docs;
  for (std::int64_t i = 0; i < count; ++i) {
    if ((first + i) % shards != shard) continue;
    docarray::Document d("doc-" + std::to_string(first + i));
    d.embedding = all[i].clone();
    docs.append(std::move(d));
  }
  return docs;
}

// Writes shard `shard` of `shards` with SimpleIndexer itself, in this process.
void write_shard(const fs::path& log, std::int64_t docs, int dim, int shards, int shard) {
  if (fs::exists(log)) return;
  const fs::path tmp = log.string() + ".writing";
  fs::remove(tmp);
  fs::remove(tmp.string() + ".lock");
  docflow::Flow f = docflow::Flow::from_config(docflow::parse_flow_text(
      "jtype: Flow\nwith: {name: write}\nexecutors:\n  - {name: indexer, uses: SimpleIndexer, with: {path: " + tmp.string() + "}}\n"));
  f.open(log.parent_path() / ("write-" + std::to_string(shards) + "-" + std::to_string(shard)));
  constexpr std::int64_t kChunk = 20000;
  for (std::int64_t first = 0; first < docs; first += kChunk) f.post("/index", documents(first, std::min(kChunk, docs - first), dim, shards, shard));
  f.close();
  fs::rename(tmp, log);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_shards FLOW_EXE [--docs N] [--dim D] [--shards 1,2,4] [--seconds S] [--concurrency 1,4]\n");
    return 2;
  }
  const std::string flow_exe = argv[1];
  std::int64_t docs = 1000000;
  int dim = 512;
  std::vector<int> shard_counts = {1, 2, 4};
  const LoadArgs args = parse_load_args(argc, argv, 2, LoadArgs{3, {1, 4}}, [&](const std::string& k, const std::string& v) {
    if (k == "--docs") docs = std::stoll(v);
    else if (k == "--dim") dim = std::stoi(v);
    else if (k == "--shards") {
      shard_counts.clear();
      std::stringstream ss(v);
      for (std::string s; std::getline(ss, s, ',');) shard_counts.push_back(std::stoi(s));
    } else return false;
    return true;
  });
  const fs::path dir = "/tmp/docflow-bench-shards-" + std::to_string(docs) + "-" + std::to_string(dim);
  fs::create_directories(dir);
  const std::string workspace = (dir / "runs").string();

  const auto t0 = Clock::now();
  for (int n : shard_counts)
    for (int s = 0; s < n; ++s) write_shard(dir / (std::to_string(n) + "-" + std::to_string(s) + ".log"), docs, dim, n, s);
  std::printf("sharded search: %lld documents x %d floats, top 10 of one query per request (msgpack), %.0f s per point, %u cores\n",
              static_cast<long long>(docs), dim, args.seconds, std::thread::hardware_concurrency());
  std::printf("(index logs ready in %.0f s: %s)\n\n", std::chrono::duration<double>(Clock::now() - t0).count(), dir.c_str());

  docarray::DocumentArray query;
  {
    docarray::Document q("query");
    q.embedding = at::randn({dim});
    query.append(std::move(q));
  }
  docarray::Value fields = docarray::Value::map();
  fields["parameters"] = docarray::Value::map();
  fields["parameters"]["limit"] = 10;
  const std::string search = post_request("/search", docarray::to_msgpack_envelope(fields, query), "application/x-msgpack");
  fields["exec_endpoint"] = "/search";  // a `flow executor` takes every endpoint at /post
  const std::string direct = post_request("/post", docarray::to_msgpack_envelope(fields, query), "application/x-msgpack");

  std::printf("%6s %12s | %8s %8s | ", "shards", "docs/shard", "shard/s", "p50 ms");
  for (int c : args.concurrency) std::printf("c%-3d %8s %8s %8s | ", c, "front/s", "p50 ms", "p99 ms");
  std::printf("\n");
  for (int n : shard_counts) {
    std::vector<pid_t> shards;
    std::vector<int> ports;
    for (int s = 0; s < n; ++s) {
      ports.push_back(free_port());
      shards.push_back(spawn({flow_exe, "executor", "--uses", "SimpleIndexer", "--set",
                              "path=" + (dir / (std::to_string(n) + "-" + std::to_string(s) + ".log")).string(), "--set", "limit=10",
                              "--name", "shard-" + std::to_string(n) + "-" + std::to_string(s), "--workspace", workspace, "--port",
                              std::to_string(ports.back())}));
    }
    std::string hosts;
    for (int p : ports) hosts += (hosts.empty() ? "" : ", ") + std::string("127.0.0.1:") + std::to_string(p);
    const std::string front_file = (dir / ("front-" + std::to_string(n) + ".yml")).string();
    std::ofstream(front_file) << "jtype: Flow\nwith: {name: front, workspace: " << workspace << ", prefetch: 16}\nexecutors:\n"
                              << "  - {name: indexer, " << (n > 1 ? "shards: " + std::to_string(n) + ", " : std::string())
                              << "hosts: [" << hosts << "], polling: {/search: ALL, '*': ANY}}\n";
    bool up = true;
    for (int p : ports) up = up && wait_healthy(p, 600);
    const int front_port = free_port();
    pid_t front = spawn({flow_exe, "serve", front_file, "--port", std::to_string(front_port), "--name", "front-" + std::to_string(n)});
    up = up && wait_healthy(front_port, 60);
    if (!up) {
      std::fprintf(stderr, "bench_shards: %d shards did not come up\n", n);
    } else {
      // One search through the front before anything is timed (it connects
      // the front to the shards); its time is printed at the end of the row.
      double first_ms = 0;
      {
        int fd = connect_to(front_port);
        std::string buf;
        const auto w0 = Clock::now();
        if (exchange(fd, search, buf) != 200) std::fprintf(stderr, "bench_shards: the warm-up search failed: %s\n", buf.substr(0, 300).c_str());
        first_ms = std::chrono::duration<double, std::milli>(Clock::now() - w0).count();
        ::close(fd);
      }
      const Point one = load(ports[0], direct, 1, args.seconds);  // a shard alone: its part of the work
      std::printf("%6d %12lld | %8.1f %8.2f | ", n, static_cast<long long>(docs / n), one.rps, one.p50_ms);
      for (int c : args.concurrency) {
        const Point p = load(front_port, search, c, args.seconds);
        std::printf("     %8.1f %8.2f %8.2f | ", p.rps, p.p50_ms, p.p99_ms);
        if (p.errors) {
          // Say what the front answered, once.
          int fd = connect_to(front_port);
          std::string buf;
          exchange(fd, search, buf);
          ::close(fd);
          std::printf("(%zu errors: %s) ", p.errors, buf.substr(0, 300).c_str());
        }
      }
      std::printf("first %.0f ms\n", first_ms);
    }
    stop(front);
    for (pid_t p : shards) stop(p);
  }
  return 0;
}
