#include "docarray/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "docarray/error.hpp"

namespace docarray::metrics {
namespace {

std::size_t cut(const Relevance& r, std::optional<int> k) {
  if (k && *k < 1) throw Error("metric: k must be at least 1, got " + std::to_string(*k));
  return k ? std::min(r.size(), static_cast<std::size_t>(*k)) : r.size();
}

std::size_t relevant_in(const Relevance& r, std::size_t n) {
  return static_cast<std::size_t>(std::count_if(r.begin(), r.begin() + n, [](double v) { return v != 0; }));
}

}  // namespace

double precision_at_k(const Relevance& r, std::optional<int> k) {
  std::size_t n = cut(r, k);
  return n == 0 ? 0.0 : static_cast<double>(relevant_in(r, n)) / n;
}

double hit_at_k(const Relevance& r, std::optional<int> k) { return relevant_in(r, cut(r, k)) > 0 ? 1.0 : 0.0; }

double recall_at_k(const Relevance& r, std::optional<int> max_rel, std::optional<int> k) {
  std::size_t found = relevant_in(r, cut(r, k));
  if (!max_rel) throw Error("recall_at_k needs max_rel, the number of relevant documents in all");
  if (*max_rel < 0 || static_cast<std::size_t>(*max_rel) < found)
    throw Error("recall_at_k: max_rel " + std::to_string(*max_rel) + " is smaller than the " +
                std::to_string(found) + " relevant results found");
  return *max_rel == 0 ? 0.0 : static_cast<double>(found) / *max_rel;
}

double f1_score_at_k(const Relevance& r, std::optional<int> max_rel, std::optional<int> k) {
  double p = precision_at_k(r, k), rc = recall_at_k(r, max_rel, k);
  return p + rc == 0 ? 0.0 : 2 * p * rc / (p + rc);
}

double r_precision(const Relevance& r) {
  std::size_t R = relevant_in(r, r.size());
  return R == 0 ? 0.0 : static_cast<double>(relevant_in(r, R)) / R;
}

double average_precision(const Relevance& r) {
  double sum = 0;
  std::size_t hits = 0;
  for (std::size_t j = 0; j < r.size(); ++j) {
    if (r[j] == 0) continue;
    ++hits;
    sum += static_cast<double>(hits) / (j + 1);  // precision at j + 1
  }
  return hits == 0 ? 0.0 : sum / hits;
}

double reciprocal_rank(const Relevance& r) {
  for (std::size_t j = 0; j < r.size(); ++j) {
    if (r[j] != 0) return 1.0 / (j + 1);
  }
  return 0.0;
}

double dcg_at_k(const Relevance& r, int method, std::optional<int> k) {
  if (method != 0 && method != 1) throw Error("dcg_at_k: method must be 0 or 1, got " + std::to_string(method));
  std::size_t n = cut(r, k);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t pos = i + 1;
    if (method == 0) sum += pos == 1 ? r[i] : r[i] / std::log2(static_cast<double>(pos));
    else sum += r[i] / std::log2(static_cast<double>(pos + 1));
  }
  return sum;
}

double ndcg_at_k(const Relevance& r, int method, std::optional<int> k) {
  Relevance ideal = r;
  std::sort(ideal.begin(), ideal.end(), std::greater<>());
  double best = dcg_at_k(ideal, method, k);
  return best == 0 ? 0.0 : dcg_at_k(r, method, k) / best;
}

const std::vector<std::string>& names() {
  static const std::vector<std::string> kNames = {
      "average_precision", "dcg_at_k",      "f1_score_at_k", "hit_at_k",       "ndcg_at_k",
      "precision_at_k",    "r_precision",   "recall_at_k",   "reciprocal_rank"};
  return kNames;
}

}  // namespace docarray::metrics
