// The search application served: queries per second and p50/p99 latency of
// `flow serve flows/fashion-search.yml` (tokenizer, CLIP text encoder,
// SimpleIndexer over 10,000 images with PNG thumbnails) against a FastAPI +
// uvicorn + PyTorch peer doing the same per query (bench/search_peer.py),
// both driven by the same closed-loop clients; and /index throughput in
// documents per second with durability on (an fdatasync per request).
//
//   bench_search FLOW_EXE VOCAB [--docs 10000] [--seconds 3] [--concurrency 1,16]
//
// Both sides run CLIP's `small` preset with random weights (the main job's
// architecture: the cost of a query does not depend on what the weights
// learned) over the same embeddings and blobs.
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "clip/image.hpp"
#include "docarray/document_file.hpp"
#include "docarray/envelope.hpp"
#include "load_generator.hpp"
#include "result_line.hpp"

namespace {

using namespace bench;

// A 28 x 28 grey garment-like shape with some texture: its PNG is about the
// size of a Fashion-MNIST thumbnail's.
std::string thumbnail(int i) {
  clip::Image im{28, 28, std::vector<std::uint8_t>(28 * 28 * 3)};
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const double dx = (x - 13.5) / (6 + i % 7), dy = (y - 13.5) / 12;
      const unsigned h = (static_cast<unsigned>(x) * 73856093u) ^ (static_cast<unsigned>(y) * 19349663u) ^ (static_cast<unsigned>(i) * 83492791u);
      const int v = dx * dx + dy * dy < 1 ? 100 + static_cast<int>(h % 97u) : 0;
      for (int c = 0; c < 3; ++c) im.rgb[(y * 28 + x) * 3 + c] = static_cast<std::uint8_t>(v);
    }
  return clip::encode_png(im);
}

// `flow serve` on `port`; the child of this process.
pid_t serve(const std::string& flow_exe, const std::string& flow_file, int port, const std::string& name,
            const std::vector<std::string>& sets) {
  std::vector<std::string> argv = {flow_exe, "serve", flow_file, "--name", name, "--port", std::to_string(port)};
  for (const auto& s : sets) argv.insert(argv.end(), {"--set", s});
  return spawn(argv);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_search FLOW_EXE VOCAB [--docs 10000] [--seconds 3] [--concurrency 1,16]\n");
    return 2;
  }
  const std::string flow_exe = argv[1], vocab = argv[2];
  int count = 10000;
  const LoadArgs args = parse_load_args(argc, argv, 3, LoadArgs{3, {1, 16}}, [&](const std::string& key, const std::string& value) {
    if (key != "--docs") return false;
    count = std::stoi(value);
    return true;
  });
  const double seconds = args.seconds;
  const std::vector<int>& concurrency = args.concurrency;
  const std::filesystem::path dir = "/tmp/docflow-bench-search-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string workspace = "with.workspace=" + (dir / "runs").string();

  // The documents: what flows/fashion-index.yml stores for each image.
  at::manual_seed(0);
  docarray::DocumentArray docs;
  std::size_t blob_bytes = 0;
  for (int i = 0; i < count; ++i) {
    docarray::Document d("test-" + std::to_string(i));
    d.embedding = at::randn({128});
    d.blob = thumbnail(i);
    d.mime_type = "image/png";
    d.tags["label"] = i % 10;
    d.tags["label_name"] = "class " + std::to_string(i % 10);
    blob_bytes += d.blob.size();
    docs.append(std::move(d));
  }
  docarray::save_documents(docs, (dir / "index.jsonl").string());  // the peer's copy
  std::printf("search: %d documents (128-float embeddings, PNG thumbnails of %zu bytes on average), %u cores\n\n", count,
              blob_bytes / static_cast<std::size_t>(count), std::thread::hardware_concurrency());

  // /index, durable: requests of 100 documents, one client, each answered
  // after its fdatasync.
  const std::string index_log = (dir / "index.log").string();
  {
    const std::string flow_file = (dir / "index.yml").string();
    std::ofstream(flow_file) << "jtype: Flow\nwith: {name: bench-index}\nexecutors:\n"
                             << "  - {name: indexer, uses: SimpleIndexer, with: {path: " << index_log << "}}\n";
    const int port = free_port();
    pid_t server = serve(flow_exe, flow_file, port, "bench-index-" + std::to_string(::getpid()), {workspace});
    if (!wait_healthy(port, 30)) {
      std::fprintf(stderr, "bench_search: the index flow did not come up\n");
      stop(server);
      return 1;
    }
    docarray::Value fields = docarray::Value::map();
    for (const std::string type : {"application/json", "application/x-msgpack"}) {
      std::vector<std::string> requests;
      for (const auto& batch : docs.batches(100))
        requests.push_back(post_request("/index",
                                        type == "application/json" ? docarray::to_json_envelope(fields, batch)
                                                                   : docarray::to_msgpack_envelope(fields, batch),
                                        type));
      int fd = connect_to(port);
      std::string buf;
      std::size_t failed = 0;
      const auto t0 = Clock::now();
      for (const auto& r : requests) failed += exchange(fd, r, buf) != 200;
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      ::close(fd);
      std::printf("/index %-22s %8.0f documents/s durable (%zu requests of 100, fdatasync each: %.2f ms per request)%s\n",
                  type.c_str(), count / s, requests.size(), 1000 * s / requests.size(), failed ? "  (errors!)" : "");
    }
    stop(server);
  }

  // /search: our flow and the peer over the same documents.
  const int ours_port = free_port(), peer_port = free_port();
  pid_t ours = serve(flow_exe, BENCH_DIR "/../flows/fashion-search.yml", ours_port, "bench-search-" + std::to_string(::getpid()),
                     {workspace, "CONTEXT.RUN=bench", "tokenize.vocab=" + vocab, "text_encoder.model=small",
                      "indexer.path=" + index_log});
  ::setenv("SEARCH_PEER_INDEX", (dir / "index.jsonl").c_str(), 1);
  pid_t peer = spawn({"/usr/bin/python3", "-m", "uvicorn", "search_peer:app", "--app-dir", BENCH_DIR, "--host", "127.0.0.1",
                      "--port", std::to_string(peer_port), "--log-level", "warning", "--no-access-log"});
  const bool ours_up = wait_healthy(ours_port, 60), peer_up = wait_healthy(peer_port, 120);
  if (!ours_up || !peer_up) {
    std::fprintf(stderr, "bench_search: %s did not come up\n",
                 !ours_up ? "flow serve" : "the peer (python3-fastapi, python3-uvicorn, python3-torch)");
    stop(ours);
    stop(peer);
    return 1;
  }
  const std::string query = post_request(
      "/search", R"({"data": [{"text": "a pair of trousers"}], "parameters": {"limit": 20}})", "application/json");
  std::size_t ours_bytes = 0, peer_bytes = 0;
  for (auto [port, bytes] : {std::pair<int, std::size_t*>{ours_port, &ours_bytes}, {peer_port, &peer_bytes}}) {
    int fd = connect_to(port);
    std::string buf;
    for (int i = 0; i < 20; ++i)
      if (exchange(fd, query, buf) != 200) std::fprintf(stderr, "warm-up query failed on port %d: %.300s\n", port, buf.c_str());
    *bytes = buf.size();
    ::close(fd);
  }
  std::printf("\n/search \"a pair of trousers\", 20 matches with thumbnails (answers of %zu and %zu bytes), %.0f s per point\n",
              ours_bytes, peer_bytes, seconds);
  std::printf("%5s | %10s %8s %8s | %10s %8s %8s | %7s %9s\n", "conc", "docflow/s", "p50 ms", "p99 ms", "peer/s", "p50 ms",
              "p99 ms", "qps x", "p99 peer/");
  for (int c : concurrency) {
    const Point o = load(ours_port, query, c, seconds), t = load(peer_port, query, c, seconds);
    std::printf("%5d | %10.0f %8.2f %8.2f | %10.0f %8.2f %8.2f | %6.1fx %8.1fx%s\n", c, o.rps, o.p50_ms, o.p99_ms, t.rps,
                t.p50_ms, t.p99_ms, t.rps > 0 ? o.rps / t.rps : 0, o.p99_ms > 0 ? t.p99_ms / o.p99_ms : 0,
                o.errors || t.errors ? "  (errors!)" : "");
    bench::result("the search application, /search, concurrency " + std::to_string(c), bench::figure(o.rps, "queries/s", 0),
                  "FastAPI + PyTorch " + bench::figure(t.rps, "queries/s", 0), t.rps > 0 ? o.rps / t.rps : 0);
  }
  stop(ours);
  stop(peer);
  std::filesystem::remove_all(dir);
  return 0;
}
