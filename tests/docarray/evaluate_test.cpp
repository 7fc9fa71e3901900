#include <boost/test/unit_test.hpp>

#include "docarray/error.hpp"
#include "docarray/evaluate.hpp"
#include "docarray/metrics.hpp"

using docarray::Document;
using docarray::DocumentArray;
namespace tt = boost::test_tools;

namespace {
// One query whose matches are relevant as in r = [0,1,0,1,1], by label tag.
DocumentArray labelled() {
  DocumentArray queries;
  Document q("q");
  q.tags["label"] = 1;
  for (int rel : {0, 1, 0, 1, 1}) {
    Document m;
    m.tags["label"] = rel ? 1 : 2;
    q.add_match(m);
  }
  queries.append(q);
  Document q2("q2");
  q2.tags["label"] = "shirt";
  Document m;
  m.tags["label"] = "shirt";
  q2.add_match(m);
  queries.append(q2);
  return queries;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(evaluate)

BOOST_AUTO_TEST_CASE(by_label_stores_evaluations_and_returns_means) {
  DocumentArray queries = labelled();
  docarray::EvaluateOptions opt;
  opt.metrics = docarray::metrics::names();
  opt.k = 3;
  opt.num_relevant_per_label = {{"1", 4}, {"\"shirt\"", 2}};
  auto means = docarray::evaluate(queries, opt);
  BOOST_TEST(means.size() == 9u);
  BOOST_TEST(queries[0].evaluations.at("precision_at_k").value == 1.0 / 3, tt::tolerance(1e-9));
  BOOST_TEST(queries[0].evaluations.at("recall_at_k").value == 0.25);
  BOOST_TEST(queries[0].evaluations.at("average_precision").value == 0.533333, tt::tolerance(1e-6));
  BOOST_TEST(queries[1].evaluations.at("recall_at_k").value == 0.5);
  BOOST_TEST(means["precision_at_k"] == (1.0 / 3 + 1.0) / 2, tt::tolerance(1e-9));
  BOOST_TEST(means["reciprocal_rank"] == 0.75);
}

BOOST_AUTO_TEST_CASE(caller_max_rel_metric_names_and_custom_metrics_as_docarray) {
  // max_rel given by the caller replaces the per-label counts for every query.
  DocumentArray queries = labelled();
  docarray::EvaluateOptions opt;
  opt.metrics = {"recall_at_k", "precision_at_k"};
  opt.metric_names = {"recall", "precision"};
  opt.k = 3;
  opt.max_rel = 10;
  opt.num_relevant_per_label = {{"1", 4}, {"\"shirt\"", 2}};
  // A caller's metric: the relevant matches among the first two, and what max_rel it saw.
  std::vector<std::optional<int>> seen;
  opt.custom_metrics.push_back({"relevant_in_top_2", [&](const docarray::metrics::Relevance& r, std::optional<int> max_rel,
                                                         std::optional<int> k) {
                                  seen.push_back(max_rel);
                                  BOOST_TEST(k.value() == 3);
                                  double n = 0;
                                  for (std::size_t i = 0; i < std::min<std::size_t>(2, r.size()); ++i) n += r[i];
                                  return n;
                                }});
  auto means = docarray::evaluate(queries, opt);
  BOOST_TEST(means.size() == 3u);
  BOOST_TEST(queries[0].evaluations.at("recall").value == 0.1);  // 1 relevant in the top 3, of 10
  BOOST_TEST(queries[1].evaluations.at("recall").value == 0.1);
  BOOST_TEST(queries[0].evaluations.at("precision").value == 1.0 / 3, tt::tolerance(1e-9));
  BOOST_TEST(queries[0].evaluations.at("recall").op_name == "recall_at_k");
  BOOST_TEST(queries[0].evaluations.count("recall_at_k") == 0u);
  BOOST_TEST(queries[0].evaluations.at("relevant_in_top_2").value == 1.0);
  BOOST_TEST(queries[1].evaluations.at("relevant_in_top_2").value == 1.0);
  BOOST_TEST(means["relevant_in_top_2"] == 1.0);
  BOOST_TEST((seen == std::vector<std::optional<int>>{10, 10}));

  auto error_of = [&](docarray::EvaluateOptions o) {
    try {
      DocumentArray qs = labelled();
      docarray::evaluate(qs, o);
    } catch (const docarray::Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  docarray::EvaluateOptions bad = opt;
  bad.metric_names = {"only one"};
  BOOST_TEST(error_of(bad) == "evaluate: 1 metric names for 2 metrics (give one name per metric, or none)");
  bad = opt;
  bad.metric_names = {"same", "same"};
  BOOST_TEST(error_of(bad) == "evaluate: two metrics are named 'same'");
  bad = opt;
  bad.max_rel = 0;
  BOOST_TEST(error_of(bad) == "evaluate: max_rel must be at least 1, got 0");
  // As DocArray: a per-label count that misses a query's label is an error, not a silent None.
  bad = opt;
  bad.max_rel.reset();
  bad.num_relevant_per_label = {{"1", 4}};
  BOOST_TEST(error_of(bad) == "evaluate: num_relevant_per_label has no count for label \"shirt\" (query 'q2')");
  bad = opt;
  bad.custom_metrics[0].fn = [](const docarray::metrics::Relevance&, std::optional<int>, std::optional<int>) -> double {
    throw std::runtime_error("boom");
  };
  BOOST_TEST(error_of(bad) == "evaluate: query 'q': metric 'relevant_in_top_2': boom");
}

BOOST_AUTO_TEST_CASE(by_ground_truth_compares_ids_or_fields) {
  DocumentArray queries;
  Document q("q");
  for (const char* id : {"a", "b", "c"}) {
    Document m(id);
    m.text = std::string("text-") + id;
    q.add_match(m);
  }
  queries.append(q);
  DocumentArray truth;
  Document gt("q");
  gt.add_match(Document("b"));
  gt.add_match(Document("z"));
  truth.append(gt);
  docarray::EvaluateOptions opt;
  opt.metrics = {"precision_at_k", "recall_at_k", "reciprocal_rank"};
  opt.ground_truth = &truth;
  auto means = docarray::evaluate(queries, opt);
  BOOST_TEST(means["precision_at_k"] == 1.0 / 3, tt::tolerance(1e-9));
  BOOST_TEST(means["recall_at_k"] == 0.5);  // max_rel = two ground-truth matches
  BOOST_TEST(means["reciprocal_rank"] == 0.5);

  Document gt_text("q");
  Document by_text;
  by_text.text = "text-c";
  gt_text.add_match(by_text);
  DocumentArray truth_text;
  truth_text.append(gt_text);
  opt.ground_truth = &truth_text;
  opt.hash_field = "text";
  BOOST_TEST(docarray::evaluate(queries, opt)["reciprocal_rank"] == 1.0 / 3, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(errors_name_the_query) {
  DocumentArray queries = labelled();
  docarray::EvaluateOptions opt;
  opt.metrics = {"recall_at_k"};
  try {
    docarray::evaluate(queries, opt);  // no per-label count: recall has no max_rel
    BOOST_FAIL("expected an error");
  } catch (const docarray::Error& e) {
    BOOST_TEST(std::string(e.what()).find("query 'q'") != std::string::npos);
  }
  opt.metrics = {"precision"};
  BOOST_CHECK_THROW(docarray::evaluate(queries, opt), docarray::Error);
  opt.metrics = {"precision_at_k"};
  opt.k = 0;
  BOOST_CHECK_THROW(docarray::evaluate(queries, opt), docarray::Error);
  opt.k.reset();
  queries[1].tags.erase("label");
  BOOST_CHECK_THROW(docarray::evaluate(queries, opt), docarray::Error);

  DocumentArray truth;
  truth.append(Document("other"));
  truth.append(Document("q2"));
  for (auto& t : truth) t.add_match(Document("relevant"));
  DocumentArray qs = labelled();
  opt.ground_truth = &truth;
  BOOST_CHECK_THROW(docarray::evaluate(qs, opt), docarray::Error);  // strict: ids differ
  opt.strict = false;
  BOOST_CHECK_NO_THROW(docarray::evaluate(qs, opt));
}

// Where docflow followed DocArray 0.21's own evaluation.py after a check
// against it: empty inputs are refused, max_rel counts every ground-truth
// match, labels compare as Python's == does.
BOOST_AUTO_TEST_CASE(follows_docarray_on_empty_inputs_duplicates_and_label_equality) {
  docarray::EvaluateOptions opt;
  opt.metrics = {"recall_at_k"};
  DocumentArray none;
  BOOST_CHECK_THROW(docarray::evaluate(none, opt), docarray::Error);
  DocumentArray bare;
  bare.append(Document("q"));
  bare[0].tags["label"] = 1;
  BOOST_CHECK_THROW(docarray::evaluate(bare, opt), docarray::Error);

  // Ground truth with a duplicate: max_rel is 2, so one hit recalls 0.5.
  DocumentArray qs;
  qs.append(Document("q"));
  qs[0].add_match(Document("a"));
  DocumentArray truth;
  truth.append(Document("q"));
  truth[0].add_match(Document("a"));
  truth[0].add_match(Document("a"));
  opt.ground_truth = &truth;
  BOOST_TEST(docarray::evaluate(qs, opt).at("recall_at_k") == 0.5);
  DocumentArray empty_truth;
  empty_truth.append(Document("q"));
  opt.ground_truth = &empty_truth;
  BOOST_CHECK_THROW(docarray::evaluate(qs, opt), docarray::Error);

  // Label 1 matches 1.0 and true, not "1".
  opt.ground_truth = nullptr;
  opt.metrics = {"precision_at_k"};
  DocumentArray labels;
  labels.append(Document("q"));
  labels[0].tags["label"] = 1;
  for (docarray::Value v : {docarray::Value(1.0), docarray::Value(true), docarray::Value("1"), docarray::Value(2)}) {
    Document m;
    m.tags["label"] = v;
    labels[0].add_match(m);
  }
  BOOST_TEST(docarray::evaluate(labels, opt).at("precision_at_k") == 0.5);
}

BOOST_AUTO_TEST_SUITE_END()
