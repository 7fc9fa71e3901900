// DistributedSampler's contract on the readers' sampler: over an epoch the
// ranks' examples are disjoint, their union is the single-process epoch
// minus the dropped remainder, and global batch k is the same set of
// examples on any number of ranks.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "docflow/error.hpp"
#include "epoch_sampler.hpp"

using docflow::finetune::EpochSampler;

BOOST_AUTO_TEST_CASE(ranks_share_an_epoch_disjointly_by_whole_global_batches) {
  std::vector<int> order(1003);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(5);
  std::shuffle(order.begin(), order.end(), rng);
  const std::size_t batch = 48;
  const EpochSampler one = EpochSampler::make(batch, 1, 0, true, "reader");
  const std::vector<int> single = one.share(order);
  BOOST_TEST(single.size() == 1003u / 48u * 48u);  // the incomplete last batch is dropped
  BOOST_TEST(one.batches(order.size()) == 20);
  for (int world : {2, 3, 4}) {
    std::vector<std::vector<int>> shares;
    for (int r = 0; r < world; ++r) shares.push_back(EpochSampler::make(batch, world, r, true, "reader").share(order));
    std::multiset<int> all;
    for (const auto& s : shares) {
      BOOST_TEST(s.size() == single.size() / static_cast<std::size_t>(world));  // equal shares
      all.insert(s.begin(), s.end());
    }
    BOOST_TEST(all.size() == single.size());
    BOOST_TEST(std::set<int>(all.begin(), all.end()) == std::set<int>(single.begin(), single.end()));  // disjoint, same union
    const std::size_t local = batch / static_cast<std::size_t>(world);
    for (std::size_t k = 0; k < single.size() / batch; ++k) {
      std::set<int> global;
      for (const auto& s : shares) global.insert(s.begin() + static_cast<std::ptrdiff_t>(k * local), s.begin() + static_cast<std::ptrdiff_t>((k + 1) * local));
      BOOST_TEST((global == std::set<int>(single.begin() + static_cast<std::ptrdiff_t>(k * batch),
                                          single.begin() + static_cast<std::ptrdiff_t>((k + 1) * batch))));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_batch_that_does_not_split_over_the_ranks_names_both_numbers) {
  try {
    EpochSampler::make(50, 4, 0, true, "reader");
    BOOST_FAIL("accepted");
  } catch (const docflow::Error& e) {
    BOOST_TEST(std::string(e.what()).find("batch_size 50 does not split evenly over 4 ranks") != std::string::npos);
  }
  BOOST_CHECK_THROW(EpochSampler::make(64, 2, 0, false, "reader"), docflow::Error);  // unequal last batches
  // One process keeps an incomplete batch when asked (an index keeps every document).
  std::vector<int> order(10);
  BOOST_TEST(EpochSampler::make(4, 1, 0, false, "reader").share(order).size() == 10u);
  BOOST_TEST(EpochSampler::make(4, 1, 0, false, "reader").batches(10) == 3);
}
