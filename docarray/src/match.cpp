#include "docarray/match.hpp"

#include <ATen/ATen.h>

#include <sstream>

#include "docarray/error.hpp"

namespace docarray {
namespace {

enum class Metric { Cosine, Euclidean, SqEuclidean, Dot };

Metric parse_metric(const std::string& name) {
  if (name == "cosine") return Metric::Cosine;
  if (name == "euclidean") return Metric::Euclidean;
  if (name == "sqeuclidean") return Metric::SqEuclidean;
  if (name == "dot") return Metric::Dot;
  throw Error("match: unknown metric '" + name + "' (expected cosine, euclidean, sqeuclidean or dot)");
}

template <typename DocPtr>
at::Tensor stack_rows(const std::vector<DocPtr>& docs, std::size_t begin, std::size_t end, const char* side) {
  std::vector<at::Tensor> rows;
  rows.reserve(end - begin);
  for (std::size_t i = begin; i < end; ++i) {
    const at::Tensor& e = docs[i]->embedding;
    if (!e.defined()) throw Error(std::string("match: ") + side + " document '" + docs[i]->id + "' has no embedding");
    rows.push_back(e.reshape({-1}));
    if (rows.back().size(0) != rows.front().size(0)) {
      std::ostringstream msg;
      msg << "match: " << side << " document '" << docs[i]->id << "' has an embedding of " << rows.back().size(0)
          << " values, the others have " << rows.front().size(0);
      throw Error(msg.str());
    }
  }
  at::Tensor out = at::stack(rows);
  return out.scalar_type() == at::kDouble ? out : out.to(at::kFloat);
}

at::Tensor l2_normalize(const at::Tensor& x) {
  return x / x.norm(2, {1}, true).clamp_min(1e-12);
}

// Distances (smaller is closer) between every query and every index row.
at::Tensor distances(Metric m, const at::Tensor& q, const at::Tensor& q_sq, const at::Tensor& x) {
  switch (m) {
    case Metric::Cosine: return 1 - at::mm(q, l2_normalize(x).t());
    case Metric::Dot: return -at::mm(q, x.t());
    case Metric::SqEuclidean:
    case Metric::Euclidean: {
      // |q|^2 + |x|^2 - 2 q.x, clamped: rounding can make it slightly negative.
      at::Tensor d = at::addmm(q_sq + x.pow(2).sum(1).unsqueeze(0), q, x.t(), 1, -2).clamp_min_(0);
      return m == Metric::Euclidean ? d.sqrt_() : d;
    }
  }
  return {};
}

}  // namespace

void match(DocumentArray& queries, const DocumentArray& index, const MatchOptions& opt) {
  const Metric metric = parse_metric(opt.metric);
  if (opt.limit == 0) throw Error("match: limit must be at least 1");
  if (opt.batch_size == 0) throw Error("match: batch_size must be at least 1");
  const std::string name = opt.metric_name.empty() ? opt.metric : opt.metric_name;

  std::vector<Document*> qdocs = queries.traverse_flat(opt.query_path);
  std::vector<const Document*> xdocs = index.traverse_flat(opt.index_path);
  if (qdocs.empty() || xdocs.empty()) return;

  at::NoGradGuard no_grad;
  at::Tensor q = stack_rows(qdocs, 0, qdocs.size(), "query");
  if (metric == Metric::Cosine) q = l2_normalize(q);
  at::Tensor q_sq = q.pow(2).sum(1, true);

  // With exclude_self one candidate per query may be dropped afterwards.
  const std::int64_t want = static_cast<std::int64_t>(opt.limit + (opt.exclude_self ? 1 : 0));
  at::Tensor best_d, best_i;
  for (std::size_t start = 0; start < xdocs.size(); start += opt.batch_size) {
    std::size_t stop = std::min(xdocs.size(), start + opt.batch_size);
    at::Tensor x = stack_rows(xdocs, start, stop, "index").to(q.scalar_type());
    if (x.size(1) != q.size(1)) {
      std::ostringstream msg;
      msg << "match: query embeddings have " << q.size(1) << " values, index embeddings have " << x.size(1);
      throw Error(msg.str());
    }
    at::Tensor d = distances(metric, q, q_sq, x);
    std::int64_t k = std::min<std::int64_t>(want, d.size(1));
    auto [vals, idx] = d.topk(k, 1, /*largest=*/false, /*sorted=*/true);
    idx.add_(static_cast<std::int64_t>(start));
    if (!best_d.defined()) {
      best_d = vals;
      best_i = idx;
      continue;
    }
    at::Tensor all_d = at::cat({best_d, vals}, 1), all_i = at::cat({best_i, idx}, 1);
    std::int64_t kk = std::min<std::int64_t>(want, all_d.size(1));
    auto [mv, pos] = all_d.topk(kk, 1, false, true);
    best_d = mv;
    best_i = all_i.gather(1, pos);
  }

  best_d = best_d.to(at::kDouble).contiguous();
  best_i = best_i.contiguous();
  const double* dp = best_d.data_ptr<double>();
  const std::int64_t* ip = best_i.data_ptr<std::int64_t>();
  const std::int64_t cols = best_d.size(1);
  for (std::size_t qi = 0; qi < qdocs.size(); ++qi) {
    Document& query = *qdocs[qi];
    std::size_t added = 0;
    for (std::int64_t j = 0; j < cols && added < opt.limit; ++j) {
      const Document& hit = *xdocs[static_cast<std::size_t>(ip[qi * cols + j])];
      if (opt.exclude_self && hit.id == query.id) continue;
      Document m = hit;
      m.matches.clear();
      double value = dp[qi * cols + j];
      NamedScore& s = m.scores[name];
      s.value = metric == Metric::Dot ? -value : value;
      s.op_name = opt.metric;
      s.ref_id = query.id;
      query.add_match(std::move(m));
      ++added;
    }
  }
}

}  // namespace docarray
