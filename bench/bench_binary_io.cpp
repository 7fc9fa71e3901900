// Write and read speed of docarray's binary format on tensor-heavy documents
// against a plain memcpy of the same bytes.
//   bench_binary_io [N=100000] [DIM=512] [DIR=/tmp]
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "docarray/binary_io.hpp"

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int dim = argc > 2 ? std::atoi(argv[2]) : 512;
  const std::string dir = argc > 3 ? argv[3] : "/tmp";
  const std::string path = dir + "/bench_binary_io.docs";

  docarray::DocumentArray docs;
  docs.reserve(n);
  at::Tensor all = at::randn({n, dim});
  for (int i = 0; i < n; ++i) {
    docarray::Document d;
    d.embedding = all[i];
    docs.append(std::move(d));
  }
  const double payload = static_cast<double>(n) * dim * 4;

  // memcpy of the same bytes: the embeddings into a fresh buffer.
  std::vector<char> dst(static_cast<std::size_t>(payload));
  std::memset(dst.data(), 0, dst.size());
  double t_memcpy = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    std::memcpy(dst.data(), all.data_ptr(), dst.size());
    t_memcpy = std::min(t_memcpy, seconds_since(t0));
  }

  double t_write = 1e9, t_read = 1e9, t_mem_write = 1e9, t_mem_read = 1e9;
  std::string bytes;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    docarray::save_binary(docs, path);
    t_write = std::min(t_write, seconds_since(t0));
    t0 = Clock::now();
    docarray::DocumentArray back = docarray::load_binary(path);
    t_read = std::min(t_read, seconds_since(t0));
    if (back.size() != docs.size()) return 1;

    std::ostringstream out;
    t0 = Clock::now();
    {
      docarray::BinaryWriter w(out);
      w.write(docs);
      w.close();
    }
    t_mem_write = std::min(t_mem_write, seconds_since(t0));
    bytes = out.str();
    std::istringstream in(bytes);
    t0 = Clock::now();
    {
      docarray::BinaryReader r(in);
      docarray::Document d{std::string()};
      docarray::DocumentArray mem;
      mem.reserve(n);
      while (r.next(d)) mem.append(std::move(d));
    }
    t_mem_read = std::min(t_mem_read, seconds_since(t0));
  }
  std::filesystem::remove(path);

  auto gbs = [&](double t) { return payload / t / 1e9; };
  std::printf("%d documents x %d float32 = %.0f MB of embeddings, file %.0f MB\n", n, dim, payload / 1e6,
              bytes.size() / 1e6);
  std::printf("memcpy                 %7.3f s  %6.2f GB/s\n", t_memcpy, gbs(t_memcpy));
  std::printf("write file (page cache)%7.3f s  %6.2f GB/s  ratio to memcpy %.2f\n", t_write, gbs(t_write), t_memcpy / t_write);
  std::printf("read file  (page cache)%7.3f s  %6.2f GB/s  ratio to memcpy %.2f\n", t_read, gbs(t_read), t_memcpy / t_read);
  std::printf("write to memory stream %7.3f s  %6.2f GB/s  ratio to memcpy %.2f\n", t_mem_write, gbs(t_mem_write), t_memcpy / t_mem_write);
  std::printf("read from memory stream%7.3f s  %6.2f GB/s  ratio to memcpy %.2f\n", t_mem_read, gbs(t_mem_read), t_memcpy / t_mem_read);
  return 0;
}
