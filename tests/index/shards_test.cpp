// A sharded SimpleIndexer answers exactly as one indexer over all the data:
// local shards (each in its own workspace) and remote shards (`flow
// executor` processes), the same ids, order and scores; a remote shard down
// under polling ALL fails the request naming the shard and its address.
#include <boost/test/unit_test.hpp>

#include <ATen/ATen.h>


#include "../support/detached_service.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/error.hpp"
#include "docflow/flow.hpp"

using namespace docflow;
using docarray::Document;
using docarray::DocumentArray;
using docarray::Value;
using docflow::testing::TempDir;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Flow served_flow(const std::string& indexer) {
  Flow f = Flow::from_config(parse_flow_text("jtype: Flow\nwith: {name: idx}\nexecutors:\n" + indexer));
  f.isolate_failures(true);
  return f;
}

DocumentArray embedded(int n, int dim, int seed, const std::string& prefix) {
  at::manual_seed(seed);
  DocumentArray docs;
  for (int i = 0; i < n; ++i) {
    Document d(prefix + std::to_string(i));
    d.embedding = at::randn({dim});
    d.tags["i"] = i;
    docs.append(std::move(d));
  }
  return docs;
}

// The matches of every query: (id, score) lists, for comparing answers.
std::vector<std::vector<std::pair<std::string, double>>> search(Flow& f, const DocumentArray& queries, int limit) {
  Value p = Value::map();
  p["limit"] = limit;
  DocumentArray r = f.post("/search", queries, p);
  std::vector<std::vector<std::pair<std::string, double>>> out;
  for (const auto& q : r) {
    out.emplace_back();
    for (const auto& m : q.matches) out.back().emplace_back(m.id, m.scores.at("cosine").value);
  }
  return out;
}

void same_answers(const std::vector<std::vector<std::pair<std::string, double>>>& a,
                  const std::vector<std::vector<std::pair<std::string, double>>>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (std::size_t q = 0; q < a.size(); ++q) {
    BOOST_REQUIRE_EQUAL(a[q].size(), b[q].size());
    for (std::size_t j = 0; j < a[q].size(); ++j) {
      BOOST_TEST(a[q][j].first == b[q][j].first, "query " << q << " match " << j);
      BOOST_TEST(a[q][j].second == b[q][j].second, boost::test_tools::tolerance(1e-6));
    }
  }
}

// A SimpleIndexer served by `flow executor`, with its own index file.
struct IndexerProcess : docflow::testing::DetachedService {
  IndexerProcess(const TempDir& dir, const std::string& name)
      : DetachedService(std::string(DOCFLOW_FLOW_EXE) + " executor --uses SimpleIndexer --set path=" + dir.file(name + ".log") +
                            " --name " + name + " --workspace " + dir.file("runs") + " --port 0 --detach",
                        dir.file("runs/" + name + "/status.json")) {}
};

const char* kPolling = "{/search: ALL, /delete: ALL, /clear: ALL, '*': ANY}";

}  // namespace

BOOST_AUTO_TEST_SUITE(shards)

BOOST_AUTO_TEST_CASE(local_shards_answer_as_one_index) {
  TempDir dir;
  Flow one = served_flow("  - {name: indexer, uses: SimpleIndexer, with: {path: " + dir.file("one.log") + "}}\n");
  Flow three = served_flow("  - {name: indexer, uses: SimpleIndexer, shards: 3, polling: " + std::string(kPolling) + "}\n");
  one.open(dir.path() / "one");
  three.open(dir.path() / "three");
  const DocumentArray docs = embedded(300, 8, 1, "d");
  for (const auto& batch : docs.batches(50)) {
    DocumentArray a = one.post("/index", batch), b = three.post("/index", batch);
    BOOST_REQUIRE_EQUAL(b.size(), batch.size());
    for (std::size_t i = 0; i < b.size(); ++i) BOOST_TEST(b[i].id == batch[i].id);  // answered in the request's order
  }
  const DocumentArray queries = embedded(10, 8, 2, "q");
  same_answers(search(one, queries, 7), search(three, queries, 7));
  // Deletes reach every shard (ALL).
  Value del = Value::map();
  del["ids"] = Value(Value::List{Value("d0"), Value("d1"), Value("d2"), Value("d3")});
  one.post("/delete", {}, del);
  three.post("/delete", {}, del);
  same_answers(search(one, queries, 300), search(three, queries, 300));
  BOOST_TEST(search(three, queries, 300)[0].size() == 296u);
  one.close();
  three.close();
  // Each shard keeps its part in its own workspace, about a third each.
  for (int s = 0; s < 3; ++s) {
    const auto log = dir.path() / "three" / ("indexer-" + std::to_string(s)) / "index.log";
    BOOST_REQUIRE(std::filesystem::exists(log));
    BOOST_TEST(std::filesystem::file_size(log) > 50 * 40u, log);
  }
  // Shards that would share one file are refused.
  std::string e;
  try {
    served_flow("  - {name: indexer, uses: SimpleIndexer, shards: 2, with: {path: x.log}}\n");
  } catch (const ConfigError& x) {
    e = x.what();
  }
  BOOST_TEST(contains(e, "executor 'indexer' has shards: 2, which would all use `path: x.log`"), e);
}

BOOST_AUTO_TEST_CASE(remote_shards_answer_as_one_index_and_a_lost_shard_is_named) {
  TempDir dir;
  IndexerProcess s0(dir, "s0"), s1(dir, "s1");
  Flow one = served_flow("  - {name: indexer, uses: SimpleIndexer, with: {path: " + dir.file("one.log") + "}}\n");
  Flow two = served_flow("  - {name: indexer, shards: 2, hosts: [" + s0.address() + ", " + s1.address() + "], polling: " +
                         std::string(kPolling) + "}\n");
  one.open(dir.path() / "one");
  two.open(dir.path() / "two");
  const DocumentArray docs = embedded(200, 8, 3, "d");
  for (const auto& batch : docs.batches(40)) {
    one.post("/index", batch);
    two.post("/index", batch);
  }
  const DocumentArray queries = embedded(8, 8, 4, "q");
  same_answers(search(one, queries, 10), search(two, queries, 10));

  s1.stop(SIGKILL);
  std::string e;
  try {
    search(two, queries, 10);
  } catch (const std::exception& x) {
    e = x.what();
  }
  BOOST_TEST(contains(e, "executor 'indexer' on /search: shard 1: "), e);
  BOOST_TEST(contains(e, s1.url()), e);
  BOOST_TEST(contains(e, "no replica of the remote executor answered"), e);
  one.close();
  two.close();
}

BOOST_AUTO_TEST_SUITE_END()
