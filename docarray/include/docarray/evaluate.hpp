#pragma once
// DocArray's `da.evaluate(...)`: scores the matches of every query with
// retrieval metrics, stores them in query.evaluations and returns the means.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "docarray/document.hpp"
#include "docarray/metrics.hpp"

namespace docarray {

// A caller's own metric, as DocArray's callables: the query's binary (or
// graded) relevance list, max_rel (when known) and k.
using MetricFunction =
    std::function<double(const metrics::Relevance& relevance, std::optional<int> max_rel, std::optional<int> k)>;

struct CustomMetric {
  std::string name;  // the key in query.evaluations and in the means
  MetricFunction fn;
};

struct EvaluateOptions {
  std::vector<std::string> metrics;  // names from metrics::names()
  // DocArray's metric_names: the keys the built-in `metrics` are stored
  // under, one per metric, in order (empty: the metric's own name).
  std::vector<std::string> metric_names;
  std::vector<CustomMetric> custom_metrics;  // computed after `metrics`
  std::optional<int> k;              // for the *_at_k metrics; all matches when unset
  int dcg_method = 0;
  // DocArray's caller-given max_rel: the number of relevant documents for
  // recall and F1, for every query, over what ground truth or labels say.
  std::optional<int> max_rel;

  // Relevance by ground truth: the i-th ground-truth document's matches are
  // the relevant results of the i-th query, compared by `hash_field` ("id",
  // "text", "uri" or "tags.NAME"). With `strict`, the i-th ids must be equal.
  const DocumentArray* ground_truth = nullptr;
  std::string hash_field = "id";
  bool strict = true;

  // Relevance by label (when there is no ground truth): a match is relevant
  // when its tag `label_tag` equals the query's. max_rel (for recall and f1)
  // comes from this per-label count, keyed by the label's JSON text
  // (Value::dump(): "3" for the int 3, "\"shirt\"" for the string). As in
  // DocArray, a non-empty map that lacks a query's label is an error.
  std::string label_tag = "label";
  std::map<std::string, int> num_relevant_per_label;

  std::string query_path = "@r";  // which documents are the queries
};

// Returns metric name -> mean over the queries. Throws docarray::Error for an
// unknown metric, a misaligned ground truth or a query without its label.
std::map<std::string, double> evaluate(DocumentArray& queries, const EvaluateOptions& options);

}  // namespace docarray
