#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "docarray/error.hpp"
#include "docarray/match.hpp"

using docarray::Document;
using docarray::DocumentArray;

namespace {

DocumentArray random_docs(int n, int dim, const std::string& prefix, at::ScalarType type = at::kFloat) {
  DocumentArray da;
  at::Tensor e = at::randn({n, dim}, at::kDouble);
  for (int i = 0; i < n; ++i) {
    Document d(prefix + std::to_string(i));
    d.embedding = e[i].to(type).clone();
    da.append(d);
  }
  return da;
}

// The distance of one pair, computed the slow, obvious way in double.
double reference(const std::string& metric, const at::Tensor& a, const at::Tensor& b) {
  auto x = a.to(at::kDouble), y = b.to(at::kDouble);
  const double* p = x.data_ptr<double>();
  const double* q = y.data_ptr<double>();
  double dot = 0, na = 0, nb = 0, sq = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    dot += p[i] * q[i];
    na += p[i] * p[i];
    nb += q[i] * q[i];
    sq += (p[i] - q[i]) * (p[i] - q[i]);
  }
  if (metric == "cosine") return 1 - dot / std::sqrt(na * nb);
  if (metric == "euclidean") return std::sqrt(sq);
  if (metric == "sqeuclidean") return sq;
  return dot;
}

// Every query's matches are the `limit` best of the index by reference(),
// in order, with their values within `tolerance`.
void expect_brute_force(const DocumentArray& queries, const DocumentArray& index, const std::string& metric,
                        std::size_t limit, double tolerance) {
  for (const auto& q : queries) {
    std::vector<std::pair<double, std::string>> all;
    for (const auto& x : index) all.emplace_back(reference(metric, q.embedding, x.embedding), x.id);
    std::sort(all.begin(), all.end(), [&](auto& a, auto& b) { return metric == "dot" ? a.first > b.first : a.first < b.first; });
    BOOST_REQUIRE(q.matches.size() == limit);
    for (std::size_t j = 0; j < limit; ++j) {
      const Document& m = q.matches[j];
      BOOST_TEST(m.id == all[j].second);
      BOOST_TEST(m.scores.at(metric).value == all[j].first, boost::test_tools::tolerance(tolerance));
      BOOST_TEST(m.scores.at(metric).ref_id == q.id);
      BOOST_TEST(m.adjacency == 1);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(match)

BOOST_AUTO_TEST_CASE(agrees_with_brute_force_for_every_metric) {
  at::manual_seed(7);
  const DocumentArray index = random_docs(300, 24, "x");
  for (std::string metric : {"cosine", "euclidean", "sqeuclidean", "dot"}) {
    // Up to 32 queries (16 for dot) are scored row by row (each row read
    // once for all of them and its norm, in tiles of 4 rows x 4 queries with
    // remainders of either), more by one matrix product; embeddings stacked
    // beforehand (as SimpleIndexer keeps them) give the same. 24 dimensions:
    // the row kernel's 16 lanes and a tail.
    for (std::size_t batch : {std::size_t(7), std::size_t(64), std::size_t(1000)})
    for (int nq : {1, 3, 6, 8, 9, 17, 20, 32, 33})
    for (bool stacked : {false, true}) {
      BOOST_TEST_CONTEXT(metric << " batch " << batch << " queries " << nq << (stacked ? " stacked" : "")) {
        DocumentArray queries = random_docs(nq, 24, "q");
        docarray::MatchOptions opt;
        opt.metric = metric;
        opt.limit = 10;
        opt.batch_size = batch;
        if (stacked) docarray::match(queries, index, index.embeddings(), opt);
        else docarray::match(queries, index, opt);
        expect_brute_force(queries, index, metric, 10, 1e-4);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(exclude_self_limit_and_copies_without_matches) {
  at::manual_seed(3);
  DocumentArray da = random_docs(50, 8, "d");
  da[0].add_match(Document("old"));
  docarray::MatchOptions opt;
  opt.limit = 5;
  opt.exclude_self = true;
  opt.metric = "euclidean";
  DocumentArray queries = da;
  queries[0].matches.clear();
  docarray::match(queries, da, opt);
  for (const auto& q : queries) {
    BOOST_TEST(q.matches.size() == 5u);
    for (const auto& m : q.matches) {
      BOOST_TEST(m.id != q.id);
      BOOST_TEST(m.matches.empty());
    }
    for (std::size_t j = 1; j < q.matches.size(); ++j)
      BOOST_TEST(q.matches[j - 1].scores.at("euclidean").value <= q.matches[j].scores.at("euclidean").value);
  }
  // Without exclude_self a document is its own nearest neighbour.
  DocumentArray again = random_docs(10, 8, "d");
  opt.exclude_self = false;
  docarray::match(again, again, opt);
  BOOST_TEST(again[3].matches[0].id == again[3].id);
  // A limit larger than the index returns the whole index.
  DocumentArray few = random_docs(2, 8, "q");
  opt.limit = 100;
  docarray::match(few, random_docs(4, 8, "x"), opt);
  BOOST_TEST(few[0].matches.size() == 4u);
  // Matching again replaces the matches, as DocArray does (it appended once).
  few[0].add_match(Document("stale"));
  docarray::match(few, random_docs(3, 8, "y"), opt);
  BOOST_TEST(few[0].matches.size() == 3u);
  BOOST_TEST(few[0].matches[0].id.rfind("y", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(traversal_paths_select_queries_and_index) {
  at::manual_seed(5);
  DocumentArray pairs;
  DocumentArray index = random_docs(10, 4, "x");
  Document p;
  Document text;
  text.modality = "text";
  text.embedding = index[6].embedding.clone();
  p.add_chunk(text);
  pairs.append(p);
  docarray::MatchOptions opt;
  opt.query_path = "@c";
  opt.limit = 1;
  opt.metric_name = "sim";
  docarray::match(pairs, index, opt);
  BOOST_TEST(pairs[0].matches.empty());
  BOOST_TEST(pairs[0].chunks[0].matches[0].id == "x6");
  BOOST_TEST(pairs[0].chunks[0].matches[0].scores.count("sim") == 1u);
}

BOOST_AUTO_TEST_CASE(double_embeddings_are_matched_in_double) {
  at::manual_seed(5);
  const DocumentArray index = random_docs(500, 37, "x", at::kDouble);
  for (std::string metric : {"cosine", "euclidean", "dot"})
  for (int nq : {1, 7, 12, 40}) {  // the row kernel (remainders of 1 and 3 queries), the matrix product
    BOOST_TEST_CONTEXT(metric << ", " << nq << " queries") {
      DocumentArray queries = random_docs(nq, 37, "q", at::kDouble);
      docarray::MatchOptions opt;
      opt.metric = metric;
      opt.limit = 3;
      docarray::match(queries, index, opt);
      expect_brute_force(queries, index, metric, 3, 1e-9);
    }
  }
}

BOOST_AUTO_TEST_CASE(selection_split_across_threads_agrees_with_brute_force) {
  // Large enough for the norms and the per-query selection to be split over
  // the BLAS threads (when there are several).
  at::manual_seed(11);
  const DocumentArray index = random_docs(6000, 16, "x");
  for (std::string metric : {"cosine", "sqeuclidean", "dot"})
  for (int nq : {2, 30, 64}) {  // the row kernel, either (dot), the matrix product
    BOOST_TEST_CONTEXT(metric << ", " << nq << " queries") {
      DocumentArray queries = random_docs(nq, 16, "q");
      docarray::MatchOptions opt;
      opt.metric = metric;
      opt.limit = 5;
      docarray::match(queries, index, opt);
      // The reference in double, as whole matrices (per pair would take seconds).
      const at::Tensor Q = queries.embeddings().to(at::kDouble), X = index.embeddings().to(at::kDouble);
      at::Tensor D = metric == "dot" ? at::mm(Q, X.t())
                     : metric == "cosine"
                         ? 1 - at::mm(Q / Q.norm(2, {1}, true), (X / X.norm(2, {1}, true)).t())
                         : Q.pow(2).sum(1, true) + X.pow(2).sum(1).unsqueeze(0) - 2 * at::mm(Q, X.t());
      const auto best = at::topk(D, 5, 1, /*largest=*/metric == "dot");
      for (std::int64_t i = 0; i < Q.size(0); ++i) {
        const auto& q = queries[static_cast<std::size_t>(i)];
        BOOST_REQUIRE(q.matches.size() == 5u);
        for (std::int64_t j = 0; j < 5; ++j) {
          BOOST_TEST(q.matches[static_cast<std::size_t>(j)].id == index[static_cast<std::size_t>(std::get<1>(best)[i][j].item<std::int64_t>())].id);
          BOOST_TEST(q.matches[static_cast<std::size_t>(j)].scores.at(metric).value == std::get<0>(best)[i][j].item<double>(),
                     boost::test_tools::tolerance(1e-4));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(stacked_embeddings_must_fit_the_index) {
  at::manual_seed(3);
  const DocumentArray index = random_docs(10, 8, "x");
  DocumentArray queries = random_docs(2, 8, "q");
  auto error_of = [&](const at::Tensor& stacked) {
    try {
      docarray::match(queries, index, stacked);
    } catch (const docarray::Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  BOOST_TEST(error_of(at::randn({9, 8})).find("expected a contiguous CPU [10, 8] (one row per index document)") != std::string::npos);
  BOOST_TEST(error_of(at::randn({8, 10}).t()).find("expected a contiguous CPU [10, 8]") != std::string::npos);
  BOOST_TEST(error_of(at::randn({10, 4})) == "match: query document 'q0' has an embedding of 8 values, the index's have 4");
  // Double rows are matched in the queries' float.
  docarray::match(queries, index, index.embeddings().to(at::kDouble));
  BOOST_TEST(queries[0].matches.size() == 10u);
}

BOOST_AUTO_TEST_CASE(bad_input_is_an_error) {
  DocumentArray q = random_docs(2, 4, "q"), x = random_docs(3, 5, "x");
  BOOST_CHECK_THROW(docarray::match(q, x), docarray::Error);  // 4 vs 5 dimensions
  docarray::MatchOptions opt;
  opt.metric = "manhattan";
  BOOST_CHECK_THROW(docarray::match(q, q, opt), docarray::Error);
  opt = {};
  opt.limit = 0;
  BOOST_CHECK_THROW(docarray::match(q, q, opt), docarray::Error);
  q[1].embedding = at::Tensor();
  BOOST_CHECK_THROW(docarray::match(q, random_docs(3, 4, "x")), docarray::Error);
}

BOOST_AUTO_TEST_SUITE_END()
