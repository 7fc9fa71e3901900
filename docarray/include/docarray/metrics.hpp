#pragma once
// The retrieval metrics of DocArray 0.21, on a relevance list in rank order.
// `k` is optional: without it the whole list counts. k < 1 is an error.
#include <optional>
#include <string>
#include <vector>

namespace docarray::metrics {

using Relevance = std::vector<double>;  // 0 = not relevant; graded values for dcg

double precision_at_k(const Relevance& r, std::optional<int> k = std::nullopt);
double hit_at_k(const Relevance& r, std::optional<int> k = std::nullopt);
// max_rel: how many relevant items exist in all; an error when missing or
// smaller than the relevant items found in the first k.
double recall_at_k(const Relevance& r, std::optional<int> max_rel, std::optional<int> k = std::nullopt);
double f1_score_at_k(const Relevance& r, std::optional<int> max_rel, std::optional<int> k = std::nullopt);
double r_precision(const Relevance& r);
double average_precision(const Relevance& r);
double reciprocal_rank(const Relevance& r);
// method 0: g1 + sum_{i>=2} g_i / log2(i); method 1: sum_{i>=1} g_i / log2(i + 1).
double dcg_at_k(const Relevance& r, int method = 0, std::optional<int> k = std::nullopt);
double ndcg_at_k(const Relevance& r, int method = 0, std::optional<int> k = std::nullopt);

// The nine names, in alphabetical order.
const std::vector<std::string>& names();

}  // namespace docarray::metrics
