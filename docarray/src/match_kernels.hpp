#pragma once
// The pieces of docarray::match shared by the in-memory match (match.cpp)
// and the streamed one (match_stream.cpp): metrics, the row stacking, the
// running top-k and the block scorer. Internal to docarray.
#include <ATen/ATen.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "docarray/error.hpp"
#include "docarray/match.hpp"
#include "match_simd.hpp"

namespace docarray::detail {

enum class Metric { Cosine, Euclidean, SqEuclidean, Dot };

inline Metric parse_metric(const std::string& name) {
  if (name == "cosine") return Metric::Cosine;
  if (name == "euclidean") return Metric::Euclidean;
  if (name == "sqeuclidean") return Metric::SqEuclidean;
  if (name == "dot") return Metric::Dot;
  throw Error("match: unknown metric '" + name + "' (expected cosine, euclidean, sqeuclidean or dot)");
}

// The threads the BLAS product runs on (OpenBLAS's setting, looked up at run
// time; 1 for another BLAS). The selection after each product uses as many:
// LibTorch's intra-op pool is often a single thread (Debian's LibTorch with
// OpenMP reports 1 here) while OpenBLAS runs two, and a serial selection
// left the second core to OpenBLAS's spinning workers (perf, RESULTS.md).
inline int blas_threads() {
  using Get = int (*)();
  static const Get get = reinterpret_cast<Get>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? std::max(1, get()) : 1;
}

// Runs fn(begin, end) over [0, n) in up to blas_threads() slices of at least
// `grain` items, on this thread and helpers. fn must not throw.
template <typename F>
void split_range(std::int64_t n, std::int64_t grain, const F& fn) {
  const std::int64_t slices = std::min<std::int64_t>(blas_threads(), std::max<std::int64_t>(1, n / std::max<std::int64_t>(grain, 1)));
  if (slices <= 1) {
    fn(std::int64_t(0), n);
    return;
  }
  const std::int64_t step = (n + slices - 1) / slices;
  std::vector<std::thread> helpers;
  for (std::int64_t t = 1; t < slices; ++t)
    helpers.emplace_back([&, t] { fn(t * step, std::min(n, (t + 1) * step)); });
  fn(0, std::min(n, step));
  for (auto& h : helpers) h.join();
}

// Copies the embeddings of docs[begin, end) into the first rows of `out`
// ([>= n, dim], contiguous) and returns those rows. Contiguous CPU embeddings
// of out's type are memcpy'd: a tensor op per row would cost a dispatcher
// round trip each.
template <typename DocPtr>
at::Tensor stack_rows(const std::vector<DocPtr>& docs, std::size_t begin, std::size_t end, at::Tensor out,
                      const char* side) {
  const std::int64_t dim = out.size(1);
  const at::ScalarType type = out.scalar_type();
  out = out.narrow(0, 0, static_cast<std::int64_t>(end - begin));
  char* dst = static_cast<char*>(out.data_ptr());
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * out.element_size();
  for (std::size_t i = begin; i < end; ++i, dst += row_bytes) {
    const at::Tensor& e = docs[i]->embedding;
    if (!e.defined()) throw Error(std::string("match: ") + side + " document '" + docs[i]->id + "' has no embedding");
    if (e.numel() != dim) {
      std::ostringstream msg;
      msg << "match: " << side << " document '" << docs[i]->id << "' has an embedding of " << e.numel()
          << " values, expected " << dim << " (as the first query's)";
      throw Error(msg.str());
    }
    if (e.scalar_type() == type && e.device().is_cpu() && e.is_contiguous()) {
      std::memcpy(dst, e.data_ptr(), row_bytes);
    } else {
      out[static_cast<std::int64_t>(i - begin)].copy_(e.detach().reshape({-1}));
    }
  }
  return out;
}

// The best `want` candidates of one query so far, best first. Keys are
// "larger is better"; insertion into a short sorted array beats a heap for
// the small limits retrieval uses, and most candidates fail the first compare.
template <typename T>
struct TopK {
  T* key;
  std::int64_t* idx;
  std::int64_t size = 0, want;

  void offer(T k, std::int64_t i) {
    if (size == want && !(k > key[size - 1])) return;
    std::int64_t pos = size == want ? size - 1 : size++;
    while (pos > 0 && k > key[pos - 1]) {
      key[pos] = key[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    key[pos] = k;
    idx[pos] = i;
  }
};

// Scores one block of the index against every query and keeps the best.
// With s = q.x: cosine keys are s / |x| (queries are pre-normalised), dot keys
// are s, euclidean keys are 2s - |x|^2 (so that the distance is |q|^2 - key).
// `row_sq`: the block rows' squared norms when already known (null: computed
// here). The keys overwrite `sims`.
template <typename T>
void select_block(Metric m, at::Tensor& sims, const at::Tensor& x, std::int64_t offset, T* best_key, std::int64_t* best_idx,
                  std::int64_t* best_size, std::int64_t want, const T* row_sq = nullptr) {
  const std::int64_t nq = sims.size(0), nb = sims.size(1), dim = x.size(1), row_stride = x.stride(0);
  std::vector<T> scale, shift;
  if (m != Metric::Dot) {
    scale.resize(static_cast<std::size_t>(nb));
    shift.resize(static_cast<std::size_t>(nb));
    const T* xp = x.data_ptr<T>();
    split_range(nb, 2048, [&](std::int64_t j0, std::int64_t j1) {
      // Norms not given are computed into scale[] first, then turned into it.
      if (!row_sq) simd::sq_norms(xp, row_stride, dim, j0, j1, scale.data() + j0);
      for (std::int64_t j = j0; j < j1; ++j) {
        const T sq = row_sq ? row_sq[j] : scale[j];
        if (m == Metric::Cosine) { scale[j] = T(1) / std::max(std::sqrt(sq), T(1e-12)); shift[j] = T(0); }
        else { scale[j] = T(2); shift[j] = -sq; }
      }
    });
  }
  T* sp = sims.data_ptr<T>();
  // Each query's running top-k is its own: queries split across threads
  // without sharing anything. Once a query has `want` candidates, a chunk
  // of keys none of which beats the worst of them (nearly all of them, past
  // the first blocks) costs one vector pass and no branch per key.
  constexpr std::int64_t kChunk = 64;
  split_range(nq, std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(nb, 1)), [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q) {
      TopK<T> top{best_key + q * want, best_idx + q * want, best_size[q], want};
      T* row = sp + q * nb;
      for (std::int64_t j = 0; j < nb; j += kChunk) {
        const std::int64_t n = std::min(kChunk, nb - j);
        const T worst = top.size == want ? top.key[want - 1] : -std::numeric_limits<T>::infinity();
        const std::int64_t above = m == Metric::Dot ? simd::count_above(row + j, n, worst)
                                                    : simd::keys_above(row + j, scale.data() + j, shift.data() + j, n, worst);
        // Not yet full, every key is offered (a NaN key goes last).
        if (above == 0 && top.size == want) continue;
        for (std::int64_t k = j; k < j + n; ++k) top.offer(row[k], offset + k);
      }
      best_size[q] = top.size;
    }
  });
}

// Queries up to this many are scored by few_query_scores, more by GEMM: the
// measured cross-over (100k x 512, 2 threads, AVX-512; bench/RESULTS.md).
// GEMM wins earlier for dot, which needs no row norms.
constexpr std::int64_t kFewQueries = 32;
constexpr std::int64_t kFewQueriesDot = 16;

// sims = q . x^T and (unless `norms` is false: dot) the rows' squared norms,
// for up to a few dozen queries:
// each index row is read from memory once, for its norm and every query's
// dot product (simd::score_rows, register-blocked). A GEMV per query plus a
// norm pass read a block that no longer fits in cache nq + 1 times, and one
// query against a large index (what a search server answers) is bound by
// that reading. GEMM with few queries packs (copies) the whole block first,
// and cosine and euclidean then read it once more for the norms.
template <typename T>
void few_query_scores(const at::Tensor& q, const at::Tensor& x, at::Tensor& sims, std::vector<T>& row_sq, bool norms) {
  const std::int64_t nq = q.size(0), nb = x.size(0), dim = x.size(1), stride = x.stride(0);
  const T* qp = q.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  T* sp = sims.data_ptr<T>();
  row_sq.resize(static_cast<std::size_t>(nb));
  split_range(nb, 1024, [&](std::int64_t j0, std::int64_t j1) {
    simd::score_rows(qp, nq, xp, stride, dim, j0, j1, sp, nb, norms ? row_sq.data() : nullptr);
  });
}

// The queries of one match and their running top-k: blocks of index rows
// are offered in order (`offset` is the first row's index among all the
// index rows), then write() appends each query's matches, looking the
// documents up by that index.
template <typename T>
struct Scorer {
  Metric metric;
  const MatchOptions& opt;
  std::vector<Document*>& qdocs;
  at::Tensor q, q_sq, sims;
  std::int64_t nq = 0, want = 0;
  std::vector<T> best_key;
  std::vector<std::int64_t> best_idx, best_size;
  std::vector<T> row_sq;  // few_query_scores's norms of the current block

  Scorer(Metric m, std::vector<Document*>& queries, const MatchOptions& options, at::ScalarType type, std::int64_t dim)
      : metric(m), opt(options), qdocs(queries) {
    q = stack_rows(qdocs, 0, qdocs.size(), at::empty({static_cast<std::int64_t>(qdocs.size()), dim}, at::TensorOptions().dtype(type)),
                   "query");
    q_sq = q.pow(2).sum(1).contiguous();
    if (metric == Metric::Cosine) q = q / q.norm(2, {1}, true).clamp_min(1e-12);
    nq = q.size(0);
    // With exclude_self one candidate per query may be dropped afterwards.
    want = static_cast<std::int64_t>(opt.limit + (opt.exclude_self ? 1 : 0));
    best_key.resize(static_cast<std::size_t>(nq * want));
    best_idx.resize(best_key.size());
    best_size.assign(static_cast<std::size_t>(nq), 0);
  }

  // x: [rows, dim] of the matched type, rows contiguous (any row stride).
  void offer(const at::Tensor& x, std::int64_t offset) {
    if (!sims.defined() || sims.size(1) != x.size(0)) sims = at::empty({nq, x.size(0)}, q.options());
    if (nq <= (metric == Metric::Dot ? kFewQueriesDot : kFewQueries)) {
      few_query_scores<T>(q, x, sims, row_sq, metric != Metric::Dot);
      select_block<T>(metric, sims, x, offset, best_key.data(), best_idx.data(), best_size.data(), want, row_sq.data());
      return;
    }
    at::mm_out(sims, q, x.t());  // BLAS
    select_block<T>(metric, sims, x, offset, best_key.data(), best_idx.data(), best_size.data(), want);
  }

  template <typename Lookup>  // const Document& (std::int64_t index_row)
  void write(const std::string& name, const Lookup& hit_of) {
    const T* qsq = q_sq.data_ptr<T>();
    for (std::int64_t qi = 0; qi < nq; ++qi) {
      Document& query = *qdocs[static_cast<std::size_t>(qi)];
      query.matches.clear();  // as DocArray: a new match replaces the previous matches
      std::size_t added = 0;
      for (std::int64_t j = 0; j < best_size[qi] && added < opt.limit; ++j) {
        const Document& hit = hit_of(best_idx[qi * want + j]);
        if (opt.exclude_self && hit.id == query.id) continue;
        const double key = static_cast<double>(best_key[qi * want + j]);
        double value = key;  // dot
        if (metric == Metric::Cosine) value = 1.0 - key;
        else if (metric != Metric::Dot) {
          value = std::max(0.0, static_cast<double>(qsq[qi]) - key);  // rounding can go slightly negative
          if (metric == Metric::Euclidean) value = std::sqrt(value);
        }
        Document m = hit;
        m.matches.clear();
        NamedScore& s = m.scores[name];
        s.value = value;
        s.op_name = opt.metric;
        s.ref_id = query.id;
        query.add_match(std::move(m));
        ++added;
      }
    }
  }
};

}  // namespace docarray::detail
