#include "docarray/evaluate.hpp"

#include <algorithm>
#include <unordered_set>

#include "docarray/error.hpp"
#include "docarray/metrics.hpp"

namespace docarray {
namespace {

std::string field_of(const Document& d, const std::string& field) {
  if (field == "id") return d.id;
  if (field == "text") return d.text;
  if (field == "uri") return d.uri;
  if (field.rfind("tags.", 0) == 0) {
    const Value* v = d.find_tag(field.substr(5));
    return v ? v->dump() : std::string();
  }
  throw Error("evaluate: hash_field must be id, text, uri or tags.NAME, got '" + field + "'");
}

// Python's ==, which DocArray's label comparison is: numbers compare by value
// across bool, int and float (1 == 1.0 == True); anything else by type and value.
bool same_label(const Value& a, const Value& b) {
  auto number = [](const Value& v, double& out) {
    if (v.is_bool()) out = v.as_bool();
    else if (v.is_int()) out = static_cast<double>(v.as_int());
    else if (v.is_double()) out = v.as_double();
    else return false;
    return true;
  };
  double x, y;
  if (number(a, x) && number(b, y)) return x == y;
  return a == b;
}

double score(const std::string& metric, const metrics::Relevance& r, std::optional<int> max_rel,
             const EvaluateOptions& o) {
  if (metric == "precision_at_k") return metrics::precision_at_k(r, o.k);
  if (metric == "hit_at_k") return metrics::hit_at_k(r, o.k);
  if (metric == "recall_at_k") return metrics::recall_at_k(r, max_rel, o.k);
  if (metric == "f1_score_at_k") return metrics::f1_score_at_k(r, max_rel, o.k);
  if (metric == "r_precision") return metrics::r_precision(r);
  if (metric == "average_precision") return metrics::average_precision(r);
  if (metric == "reciprocal_rank") return metrics::reciprocal_rank(r);
  if (metric == "dcg_at_k") return metrics::dcg_at_k(r, o.dcg_method, o.k);
  if (metric == "ndcg_at_k") return metrics::ndcg_at_k(r, o.dcg_method, o.k);
  std::string known;
  for (const auto& n : metrics::names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("evaluate: unknown metric '" + metric + "' (known: " + known + ")");
}

}  // namespace

std::map<std::string, double> evaluate(DocumentArray& queries, const EvaluateOptions& o) {
  if (o.metrics.empty() && o.custom_metrics.empty()) throw Error("evaluate: no metrics given");
  if (!o.metric_names.empty() && o.metric_names.size() != o.metrics.size())
    throw Error("evaluate: " + std::to_string(o.metric_names.size()) + " metric names for " +
                std::to_string(o.metrics.size()) + " metrics (give one name per metric, or none)");
  if (o.max_rel && *o.max_rel < 1) throw Error("evaluate: max_rel must be at least 1, got " + std::to_string(*o.max_rel));
  for (const auto& c : o.custom_metrics)
    if (c.name.empty() || !c.fn) throw Error("evaluate: a custom metric needs a name and a function");
  // One key per metric: two metrics stored under one name would overwrite each other.
  std::vector<std::string> keys;
  for (std::size_t m = 0; m < o.metrics.size(); ++m) keys.push_back(o.metric_names.empty() ? o.metrics[m] : o.metric_names[m]);
  for (const auto& c : o.custom_metrics) keys.push_back(c.name);
  for (std::size_t a = 0; a < keys.size(); ++a)
    for (std::size_t b = a + 1; b < keys.size(); ++b)
      if (keys[a] == keys[b]) throw Error("evaluate: two metrics are named '" + keys[a] + "'");
  if (o.k && *o.k < 1) throw Error("evaluate: k must be at least 1, got " + std::to_string(*o.k));
  for (const auto& metric : o.metrics) score(metric, {}, 0, o);  // rejects unknown names before any work
  std::vector<Document*> qs = queries.traverse_flat(o.query_path);
  // DocArray refuses both: an average over nothing, and a query whose
  // missing matches would silently score 0.
  if (qs.empty()) throw Error("evaluate: there are no queries (at traversal path '" + o.query_path + "')");
  std::vector<const Document*> gts;
  if (o.ground_truth) {
    gts = o.ground_truth->traverse_flat(o.query_path);
    if (gts.size() != qs.size())
      throw Error("evaluate: " + std::to_string(qs.size()) + " queries but " + std::to_string(gts.size()) +
                  " ground-truth documents");
  }

  std::map<std::string, double> sums;
  for (std::size_t i = 0; i < qs.size(); ++i) {
    Document& q = *qs[i];
    if (q.matches.empty())
      throw Error("evaluate: query '" + q.id + "' has no matches: call match() first");
    metrics::Relevance r;
    r.reserve(q.matches.size());
    std::optional<int> max_rel;
    if (o.ground_truth) {
      const Document& gt = *gts[i];
      if (o.strict && gt.id != q.id)
        throw Error("evaluate: query " + std::to_string(i) + " has id '" + q.id + "' but its ground truth has id '" +
                    gt.id + "' (pass strict = false to pair them by position)");
      if (gt.matches.empty())
        throw Error("evaluate: ground-truth document '" + gt.id + "' has no matches (the relevant documents)");
      std::unordered_set<std::string> relevant;
      for (const auto& m : gt.matches) relevant.insert(field_of(m, o.hash_field));
      for (const auto& m : q.matches) r.push_back(relevant.count(field_of(m, o.hash_field)) ? 1.0 : 0.0);
      // DocArray counts every ground-truth match, duplicates included.
      max_rel = static_cast<int>(gt.matches.size());
    } else {
      const Value* label = q.find_tag(o.label_tag);
      if (!label)
        throw Error("evaluate: query '" + q.id + "' has no tag '" + o.label_tag +
                    "' and no ground truth was given");
      for (const auto& m : q.matches) {
        const Value* ml = m.find_tag(o.label_tag);
        r.push_back(ml && same_label(*ml, *label) ? 1.0 : 0.0);
      }
      if (!o.num_relevant_per_label.empty() && !o.max_rel) {
        auto it = o.num_relevant_per_label.find(label->dump());
        if (it == o.num_relevant_per_label.end())
          throw Error("evaluate: num_relevant_per_label has no count for label " + label->dump() + " (query '" + q.id + "')");
        max_rel = it->second;
      }
    }
    if (o.max_rel) max_rel = o.max_rel;  // the caller's count wins, as in DocArray
    auto store = [&](const std::string& key, const std::string& op, double v) {
      NamedScore& s = q.evaluations[key];
      s.value = v;
      s.op_name = op;
      s.ref_id = q.id;
      sums[key] += v;
    };
    for (std::size_t m = 0; m < o.metrics.size(); ++m) {
      double v;
      try {
        v = score(o.metrics[m], r, max_rel, o);
      } catch (const Error& e) {
        throw Error("evaluate: query '" + q.id + "': " + e.what());
      }
      store(keys[m], o.metrics[m], v);
    }
    for (const auto& c : o.custom_metrics) {
      double v;
      try {
        v = c.fn(r, max_rel, o.k);
      } catch (const std::exception& e) {
        throw Error("evaluate: query '" + q.id + "': metric '" + c.name + "': " + e.what());
      }
      store(c.name, c.name, v);
    }
  }
  for (auto& [name, sum] : sums) sum /= static_cast<double>(qs.size());
  return sums;
}

}  // namespace docarray
