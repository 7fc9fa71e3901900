// Write and read speed of docarray's document files on tensor-heavy
// documents, beside the physical limits measured in the same run:
//   read  vs memcpy of the same tensor bytes          (goal: at least 0.5)
//   write vs a plain write() of the same file's bytes (goal: at least 0.9)
// JSON Lines and in-memory streams are reported beside them.
//   bench_binary_io [N=100000] [DIM=512] [DIR=/tmp]
#include <fcntl.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "docarray/binary_io.hpp"
#include "docarray/jsonl_io.hpp"
#include "result_line.hpp"

using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Best of `reps` runs of f.
template <typename F>
double best_of(int reps, F f) {
  double best = 1e9;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// What the file system takes for these bytes: open, write in 4 MiB calls, close.
void plain_write(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) std::exit(2);
  for (std::size_t at = 0; at < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + at, std::min<std::size_t>(4 << 20, bytes.size() - at));
    if (n <= 0) std::exit(2);
    at += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

double sum_embeddings(const docarray::DocumentArray& docs) {
  double s = 0;
  for (const auto& d : docs) {
    const float* p = d.embedding.data_ptr<float>();
    for (std::int64_t i = 0; i < d.embedding.numel(); ++i) s += p[i];
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int dim = argc > 2 ? std::atoi(argv[2]) : 512;
  const std::string dir = argc > 3 ? argv[3] : "/tmp";
  const std::string path = dir + "/bench_binary_io.docs", plain = dir + "/bench_binary_io.plain";

  docarray::DocumentArray docs;
  docs.reserve(n);
  at::Tensor all = at::randn({n, dim});
  for (int i = 0; i < n; ++i) {
    docarray::Document d;
    d.embedding = all[i];
    docs.append(std::move(d));
  }
  const double payload = static_cast<double>(n) * dim * 4;

  // memcpy of the same bytes: the embeddings into a fresh (pre-faulted) buffer.
  std::vector<char> dst(static_cast<std::size_t>(payload));
  std::memset(dst.data(), 0, dst.size());
  const double t_memcpy = best_of(5, [&] { std::memcpy(dst.data(), all.data_ptr(), dst.size()); });
  double checksum = 0;
  const double t_memcpy_sum = best_of(3, [&] {
    std::memcpy(dst.data(), all.data_ptr(), dst.size());
    const float* p = reinterpret_cast<const float*>(dst.data());
    double s = 0;
    for (std::size_t i = 0; i < dst.size() / 4; ++i) s += p[i];
    checksum = s;
  });

  // Dirty pages left by whatever ran before (a build, the previous
  // benchmark's files) are flushed now rather than by a kernel thread in the
  // middle of a timed write, where they took one of the two cores from
  // docflow's two writing threads (write ratio 0.48 in a `scripts/bench.sh`
  // run, 0.88-1.01 in runs after a sync; bench/RESULTS.md, 2026-12-07).
  ::sync();
  // Alternate docflow and the plain write so both see the same page cache state.
  double t_write = 1e9, t_plain = 1e9, t_read = 1e9, t_read_sum = 1e9;
  // Both write a new file (the old one removed beforehand, untimed):
  // replacing an existing file costs the same to both in freeing its pages,
  // and more on ext4, which starts writing back a file renamed over another
  // (auto_da_alloc); that case is timed on its own below.
  double t_overwrite = 1e9;
  // The plain write's bytes: the file's, read once and kept, so that its
  // source is memory in use as docflow's (the documents' tensors) is. A
  // fresh buffer per round made the plain write 4-5x slower than docflow's
  // on a VM where a page's first touch is dear (bench/RESULTS.md, 2026-12-07).
  std::string bytes;
  for (int rep = 0; rep < 5; ++rep) {
    std::filesystem::remove(path);
    t_write = std::min(t_write, best_of(1, [&] { docarray::save_binary(docs, path); }));
    t_overwrite = std::min(t_overwrite, best_of(1, [&] { docarray::save_binary(docs, path); }));
    if (bytes.empty()) {
      std::ifstream f(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    std::filesystem::remove(plain);
    t_plain = std::min(t_plain, best_of(1, [&] { plain_write(plain, bytes); }));
    std::filesystem::remove(plain);
    // Timed: the read alone; the documents are freed after the clock stops.
    docarray::DocumentArray kept;
    t_read = std::min(t_read, best_of(1, [&] { kept = docarray::load_binary(path); }));
    if (kept.size() != docs.size()) std::exit(1);
    kept = docarray::DocumentArray();
    t_read_sum = std::min(t_read_sum, best_of(1, [&] {
      kept = docarray::load_binary(path);
      const double s = sum_embeddings(kept);
      if (std::abs(s - checksum) > 1e-6 * std::max(1.0, std::abs(checksum)) + 1e-3) std::exit(1);
    }));
    kept = docarray::DocumentArray();
  }
  const auto file_bytes = static_cast<double>(std::filesystem::file_size(path));

  std::string mem;
  const double t_mem_write = best_of(3, [&] {
    std::ostringstream out;
    docarray::BinaryWriter w(out);
    w.write(docs);
    w.close();
    mem = out.str();
  });
  const double t_mem_read = best_of(3, [&] {
    std::istringstream in(mem);
    docarray::BinaryReader r(in);
    docarray::Document d{std::string()};
    docarray::DocumentArray back;
    back.reserve(n);
    while (r.next(d)) back.append(std::move(d));
  });
  std::filesystem::remove(path);

  // JSON Lines on a tenth of the documents (text floats are ~5x the bytes).
  const int jn = std::max(1, n / 10);
  docarray::DocumentArray jdocs;
  for (int i = 0; i < jn; ++i) jdocs.append(docs[i]);
  const std::string jpath = dir + "/bench_binary_io.jsonl";
  const double t_jwrite = best_of(2, [&] { docarray::save_jsonl(jdocs, jpath); });
  const double t_jread = best_of(2, [&] {
    if (docarray::load_jsonl(jpath).size() != jdocs.size()) std::exit(1);
  });
  std::filesystem::remove(jpath);

  auto gbs = [&](double t) { return payload / t / 1e9; };
  std::printf("%d documents x %d float32 = %.0f MB of embeddings, file %.0f MB (format version %d)\n", n, dim,
              payload / 1e6, file_bytes / 1e6, docarray::kBinaryFormatVersion);
  std::printf("memcpy                      %7.3f s  %6.2f GB/s\n", t_memcpy, gbs(t_memcpy));
  std::printf("plain write() of the file   %7.3f s  %6.2f GB/s\n", t_plain, file_bytes / t_plain / 1e9);
  std::printf("write file (page cache)     %7.3f s  %6.2f GB/s  ratio to plain write %.2f (goal 0.9)\n", t_write,
              file_bytes / t_write / 1e9, t_plain / t_write);
  std::printf("overwrite the file          %7.3f s  %6.2f GB/s  (written beside it, renamed over it)\n", t_overwrite,
              file_bytes / t_overwrite / 1e9);
  std::printf("read file  (page cache)     %7.3f s  %6.2f GB/s  ratio to memcpy %.2f (goal 0.5)\n", t_read,
              gbs(t_read), t_memcpy / t_read);
  std::printf("read file + sum every float %7.3f s  memcpy + sum %.3f s  ratio %.2f\n", t_read_sum, t_memcpy_sum,
              t_memcpy_sum / t_read_sum);
  std::printf("write to memory stream      %7.3f s  %6.2f GB/s  ratio to memcpy %.2f\n", t_mem_write,
              gbs(t_mem_write), t_memcpy / t_mem_write);
  std::printf("read from memory stream     %7.3f s  %6.2f GB/s  ratio to memcpy %.2f\n", t_mem_read, gbs(t_mem_read),
              t_memcpy / t_mem_read);
  std::printf("JSON Lines, %d documents: write %.3f s (%.0f docs/s), read %.3f s (%.0f docs/s); binary %.0f and %.0f docs/s\n",
              jn, t_jwrite, jn / t_jwrite, t_jread, jn / t_jread, n / t_write, n / t_read);
  using bench::figure;
  bench::result("write a .docs file (" + std::to_string(n) + " x " + std::to_string(dim) + " floats)",
                figure(file_bytes / t_write / 1e9, "GB/s"), "plain write() " + figure(file_bytes / t_plain / 1e9, "GB/s"),
                t_plain / t_write, 0.9);
  bench::result("read a .docs file to a DocumentArray", figure(gbs(t_read), "GB/s"), "memcpy " + figure(gbs(t_memcpy), "GB/s"),
                t_memcpy / t_read, 0.5);
  bench::result("JSON Lines write / read (" + std::to_string(jn) + " documents)",
                figure(jn / t_jwrite, "docs/s", 0) + " / " + figure(jn / t_jread, "docs/s", 0),
                ".docs " + figure(n / t_write, "docs/s", 0) + " / " + figure(n / t_read, "docs/s", 0), (jn / t_jread) / (n / t_read));
  return 0;
}
