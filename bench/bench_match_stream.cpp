// Matching an index too large for memory: docarray::match_file() streams a
// .docs file block by block. Q queries against N DIM-float embeddings, top
// K, blocks of BLOCK documents; the file is written block by block too (the
// index is never whole in memory). Printed: the time and the peak resident
// resident memory of the process while it matches (VmHWM, reset before it), against the file's size,
// beside matching the same file loaded at once (mapped, load_binary).
//   bench_match_stream [Q=100] [N=1000000] [DIM=512] [K=10] [BLOCK=4096] [DIR=/tmp]
#include <ATen/ATen.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "docarray/binary_io.hpp"
#include "docarray/match.hpp"
#include "result_line.hpp"

using Clock = std::chrono::steady_clock;

namespace {

// A field of /proc/self/status in MB (VmRSS, VmHWM).
double status_mb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return 0;
}

// The peak resident figure starts again from the current one.
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

docarray::DocumentArray random_docs(std::int64_t n, int dim, std::int64_t first) {
  at::Tensor e = at::randn({n, dim});
  e = e / e.norm(2, {1}, true);
  docarray::DocumentArray da;
  for (std::int64_t i = 0; i < n; ++i) {
    docarray::Document d("x" + std::to_string(first + i));
    d.embedding = e[i].clone();
    da.append(std::move(d));
  }
  return da;
}

}  // namespace

int main(int argc, char** argv) {
  const int nq = argc > 1 ? std::atoi(argv[1]) : 100;
  const std::int64_t nx = argc > 2 ? std::atoll(argv[2]) : 1000000;
  const int dim = argc > 3 ? std::atoi(argv[3]) : 512;
  const std::size_t k = argc > 4 ? std::atoi(argv[4]) : 10;
  const std::size_t block = argc > 5 ? std::atoi(argv[5]) : 4096;
  const std::string dir = argc > 6 ? argv[6] : "/tmp";
  const std::string file = dir + "/docflow-bench-match-stream-" + std::to_string(::getpid()) + ".docs";
  at::manual_seed(0);
  {
    docarray::BinaryWriter out(file);
    for (std::int64_t i = 0; i < nx; i += 10000) out.write(random_docs(std::min<std::int64_t>(10000, nx - i), dim, i));
    out.close();
  }
  // The file's dirty pages written back now, not by a kernel thread during
  // the timed runs (as bench_binary_io does).
  ::sync();
  const double file_mb = std::filesystem::file_size(file) / 1e6;
  docarray::DocumentArray queries = random_docs(nq, dim, 0);
  docarray::MatchOptions opt;
  opt.metric = "dot";
  opt.limit = k;
  opt.batch_size = block;

  // Streamed: the file read as it is matched. The first run's peak resident
  // memory against the process's before it; the second run timed (the page
  // cache warm for both sides).
  const double base = status_mb("VmRSS");
  reset_peak();
  docarray::match_file(queries, file, opt);
  const double peak_stream = status_mb("VmHWM");
  auto t0 = Clock::now();
  docarray::match_file(queries, file, opt);
  const double t_stream = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string first_stream = queries[0].matches[0].id;

  // Loaded at once (mapped) and matched in place.
  reset_peak();
  t0 = Clock::now();
  docarray::DocumentArray index = docarray::load_binary(file);
  docarray::match(queries, index, opt);
  const double t_loaded = std::chrono::duration<double>(Clock::now() - t0).count();
  const double peak_loaded = status_mb("VmHWM");
  const bool same = queries[0].matches[0].id == first_stream;
  index = docarray::DocumentArray();
  std::filesystem::remove(file);

  std::printf("%d queries x %lld index x %d floats (file %.0f MB), top %zu, blocks of %zu documents\n", nq,
              static_cast<long long>(nx), dim, file_mb, k, block);
  std::printf("resident before matching       %7.0f MB\n", base);
  std::printf("match_file (streamed)        %7.3f s  peak resident %7.0f MB\n", t_stream, peak_stream);
  std::printf("load_binary + match (mapped) %7.3f s  peak resident %7.0f MB (the mapped file's pages count)\n", t_loaded,
              peak_loaded);
  std::printf("same best match for the first query: %s\n", same ? "yes" : "NO");
  bench::result("match streamed from a .docs file (" + std::to_string(nx) + " x " + std::to_string(dim) + ", " +
                    std::to_string(nq) + " queries), time",
                bench::figure(t_stream, "s", 3), "loaded at once (mapped) " + bench::figure(t_loaded, "s", 3),
                t_loaded / t_stream);
  bench::result("match streamed from a .docs file, peak resident memory", bench::figure(peak_stream, "MB", 0),
                "the file " + bench::figure(file_mb, "MB", 0), peak_stream / file_mb);
  return same ? 0 : 1;
}
