#pragma once
// DocArray's `da.evaluate(...)`: scores the matches of every query with
// retrieval metrics, stores them in query.evaluations and returns the means.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "docarray/document.hpp"

namespace docarray {

struct EvaluateOptions {
  std::vector<std::string> metrics;  // names from metrics::names()
  std::optional<int> k;              // for the *_at_k metrics; all matches when unset
  int dcg_method = 0;

  // Relevance by ground truth: the i-th ground-truth document's matches are
  // the relevant results of the i-th query, compared by `hash_field` ("id",
  // "text", "uri" or "tags.NAME"). With `strict`, the i-th ids must be equal.
  const DocumentArray* ground_truth = nullptr;
  std::string hash_field = "id";
  bool strict = true;

  // Relevance by label (when there is no ground truth): a match is relevant
  // when its tag `label_tag` equals the query's. max_rel (for recall and f1)
  // comes from this per-label count, keyed by the label's JSON text
  // (Value::dump(): "3" for the int 3, "\"shirt\"" for the string).
  std::string label_tag = "label";
  std::map<std::string, int> num_relevant_per_label;

  std::string query_path = "@r";  // which documents are the queries
};

// Returns metric name -> mean over the queries. Throws docarray::Error for an
// unknown metric, a misaligned ground truth or a query without its label.
std::map<std::string, double> evaluate(DocumentArray& queries, const EvaluateOptions& options);

}  // namespace docarray
