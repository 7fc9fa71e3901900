// The test vectors of DocArray 0.21's own metric tests.
#include <boost/test/unit_test.hpp>

#include "docarray/error.hpp"
#include "docarray/metrics.hpp"

namespace m = docarray::metrics;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(metrics)

const m::Relevance r = {0, 1, 0, 1, 1};

BOOST_AUTO_TEST_CASE(binary_relevance_vectors) {
  BOOST_TEST(m::r_precision(r) == 1.0 / 3, tt::tolerance(1e-9));
  BOOST_TEST(m::precision_at_k(r, 3) == 1.0 / 3, tt::tolerance(1e-9));
  BOOST_TEST(m::precision_at_k(r, 10) == 0.6, tt::tolerance(1e-9));
  BOOST_TEST(m::precision_at_k(r) == 0.6, tt::tolerance(1e-9));
  BOOST_TEST(m::hit_at_k(r, 1) == 0.0);
  BOOST_TEST(m::hit_at_k(r, 2) == 1.0);
  BOOST_TEST(m::average_precision(r) == 0.533333, tt::tolerance(1e-6));
  BOOST_TEST(m::reciprocal_rank(r) == 0.5);
  BOOST_TEST(m::recall_at_k(r, 4, 3) == 0.25);
  BOOST_TEST(m::f1_score_at_k(r, 4, 3) == 2.0 / 7, tt::tolerance(1e-9));  // 0.285714
  BOOST_CHECK_THROW(m::recall_at_k(r, 2), docarray::Error);
  BOOST_CHECK_THROW(m::recall_at_k(r, std::nullopt), docarray::Error);
}

BOOST_AUTO_TEST_CASE(graded_relevance_vectors) {
  const m::Relevance rel = {3, 2, 3, 0, 1, 2};
  BOOST_TEST(m::dcg_at_k(rel, 0) == 8.097171, tt::tolerance(1e-6));
  BOOST_TEST(m::dcg_at_k(rel, 1) == 6.861127, tt::tolerance(1e-6));
  BOOST_TEST(m::ndcg_at_k(rel, 0) == 0.931509, tt::tolerance(1e-6));
  BOOST_TEST(m::ndcg_at_k(rel, 1) == 0.960808, tt::tolerance(1e-6));
  BOOST_TEST(m::ndcg_at_k(rel, 0, 3) == 0.949177, tt::tolerance(1e-6));
  BOOST_TEST(m::ndcg_at_k({0, 0, 0}) == 0.0);
  BOOST_CHECK_THROW(m::dcg_at_k(rel, 2), docarray::Error);
}

BOOST_AUTO_TEST_CASE(edge_cases) {
  const m::Relevance empty;
  BOOST_TEST(m::precision_at_k(empty) == 0.0);
  BOOST_TEST(m::hit_at_k(empty) == 0.0);
  BOOST_TEST(m::r_precision(empty) == 0.0);
  BOOST_TEST(m::r_precision({0, 0}) == 0.0);
  BOOST_TEST(m::average_precision({0, 0}) == 0.0);
  BOOST_TEST(m::reciprocal_rank({0, 0}) == 0.0);
  BOOST_TEST(m::dcg_at_k(empty) == 0.0);
  BOOST_TEST(m::f1_score_at_k({0, 0}, 3) == 0.0);
  for (int bad_k : {0, -1}) {
    BOOST_CHECK_THROW(m::precision_at_k(r, bad_k), docarray::Error);
    BOOST_CHECK_THROW(m::hit_at_k(r, bad_k), docarray::Error);
    BOOST_CHECK_THROW(m::recall_at_k(r, 5, bad_k), docarray::Error);
    BOOST_CHECK_THROW(m::dcg_at_k(r, 0, bad_k), docarray::Error);
    BOOST_CHECK_THROW(m::ndcg_at_k(r, 0, bad_k), docarray::Error);
  }
  BOOST_TEST(m::names().size() == 9u);
}

BOOST_AUTO_TEST_SUITE_END()
