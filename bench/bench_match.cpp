// docarray::match() against FAISS's exact IndexFlatIP: Q queries against N
// normalized DIM-dimensional embeddings, top K, in one process.
//   bench_match [Q=1000] [N=100000] [DIM=512] [K=10] [BATCH=MatchOptions' default: index rows per product]
#include <ATen/ATen.h>
#include <faiss/IndexFlat.h>

#include <chrono>
#include <cstdio>

#include "docarray/match.hpp"
#include "result_line.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const int nq = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int nx = argc > 2 ? std::atoi(argv[2]) : 100000;
  const int dim = argc > 3 ? std::atoi(argv[3]) : 512;
  const int k = argc > 4 ? std::atoi(argv[4]) : 10;
  const std::size_t batch = argc > 5 ? static_cast<std::size_t>(std::atol(argv[5])) : docarray::MatchOptions{}.batch_size;
  at::manual_seed(0);
  at::Tensor q = at::randn({nq, dim});
  at::Tensor x = at::randn({nx, dim});
  q = q / q.norm(2, {1}, true);
  x = x / x.norm(2, {1}, true);

  docarray::DocumentArray queries, index;
  for (int i = 0; i < nq; ++i) {
    docarray::Document d;
    d.embedding = q[i];
    queries.append(std::move(d));
  }
  for (int i = 0; i < nx; ++i) {
    docarray::Document d;
    d.embedding = x[i];
    index.append(std::move(d));
  }

  double t_faiss = 1e9, t_faiss_add = 1e9, t_ours = 1e9, t_stack = 1e9, t_stacked = 1e9;
  std::vector<float> dist(static_cast<std::size_t>(nq) * k);
  std::vector<faiss::Index::idx_t> labels(static_cast<std::size_t>(nq) * k);
  faiss::IndexFlatIP flat(dim);
  flat.add(nx, x.data_ptr<float>());
  for (int rep = 0; rep < 3; ++rep) {
    // FAISS's add (a copy of the vectors) is timed apart: docarray::match()
    // has no separate add, it reads the embeddings from the documents.
    faiss::IndexFlatIP fresh(dim);
    auto t0 = Clock::now();
    fresh.add(nx, x.data_ptr<float>());
    t_faiss_add = std::min(t_faiss_add, std::chrono::duration<double>(Clock::now() - t0).count());
    t0 = Clock::now();
    flat.search(nq, q.data_ptr<float>(), k, dist.data(), labels.data());
    t_faiss = std::min(t_faiss, std::chrono::duration<double>(Clock::now() - t0).count());

    for (auto& d : queries) d.matches.clear();
    t0 = Clock::now();
    docarray::MatchOptions opt;
    opt.metric = "cosine";
    opt.limit = static_cast<std::size_t>(k);
    opt.batch_size = batch;
    docarray::match(queries, index, opt);
    t_ours = std::min(t_ours, std::chrono::duration<double>(Clock::now() - t0).count());
    // As an index that answers many queries keeps them (SimpleIndexer): the
    // rows stacked once (timed apart, FAISS's add), then matched in place.
    t0 = Clock::now();
    const at::Tensor stacked = index.embeddings().contiguous();
    t_stack = std::min(t_stack, std::chrono::duration<double>(Clock::now() - t0).count());
    for (auto& d : queries) d.matches.clear();
    t0 = Clock::now();
    docarray::match(queries, index, stacked, opt);
    t_stacked = std::min(t_stacked, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  // Same neighbours? (ties aside, the top-1 must agree)
  int agree = 0;
  for (int i = 0; i < nq; ++i) agree += queries[i].matches[0].id == index[labels[i * k]].id;

  std::printf("%d queries x %d index x %d dims, top %d, %zu index rows per product\n", nq, nx, dim, k, batch);
  std::printf("faiss IndexFlatIP  %.3f s search (+ %.3f s add)\n", t_faiss, t_faiss_add);
  std::printf("docarray::match    %.3f s  (ratio faiss/docarray = %.2f; >= 1 means docarray is at least as fast)\n",
              t_ours, t_faiss / t_ours);
  std::printf("                   ratio (faiss add + search)/docarray = %.2f\n", (t_faiss + t_faiss_add) / t_ours);
  std::printf("docarray::match    %.3f s from rows stacked beforehand (+ %.3f s stacking)  (ratio faiss/docarray = %.2f)\n",
              t_stacked, t_stack, t_faiss / t_stacked);
  std::printf("top-1 agreement    %d / %d\n", agree, nq);
  const std::string what = " (" + std::to_string(nq) + " queries, " + std::to_string(nx) + " x " + std::to_string(dim) + ", top " +
                           std::to_string(k) + ")";
  bench::result("docarray::match" + what, bench::figure(t_ours, "s", 3), "FAISS IndexFlatIP " + bench::figure(t_faiss, "s", 3),
                t_faiss / t_ours, 1.0);
  bench::result("docarray::match, rows stacked beforehand", bench::figure(t_stacked, "s", 3),
                "FAISS IndexFlatIP " + bench::figure(t_faiss, "s", 3), t_faiss / t_stacked, 1.0);
  return agree == nq ? 0 : 1;
}
