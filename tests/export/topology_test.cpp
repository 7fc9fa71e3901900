// The real test of what `flow export kubernetes` describes: its Deployments
// started as local processes (tests/support/exported_topology.hpp: each
// container's command on a loopback port, one process per replica, the
// gateway with the services' addresses rewritten) answer exactly as the
// same flow run in one process: two shards of an index behind a gateway,
// with a pass-through executor of two shards of two replicas in front.
#include <ATen/ATen.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "../support/exported_topology.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/client.hpp"
#include "docflow/flow.hpp"

using namespace docflow;
using docarray::Document;
using docarray::DocumentArray;
using docarray::Value;
using namespace docflow::testing;

namespace {

const char* kFlowFile = R"(jtype: Flow
with: {name: shop}
executors:
  - name: pass
    shards: 2
    replicas: 2
  - name: indexer
    uses: SimpleIndexer
    shards: 2
    polling: {/search: ALL, /delete: ALL, '*': ANY}
)";

DocumentArray embedded(int n, int seed, const std::string& prefix) {
  at::manual_seed(seed);
  DocumentArray docs;
  for (int i = 0; i < n; ++i) {
    Document d(prefix + std::to_string(i));
    d.embedding = at::randn({16});
    d.tags["i"] = i;
    docs.append(std::move(d));
  }
  return docs;
}

using Answers = std::vector<std::vector<std::pair<std::string, double>>>;

Answers matches_of(const DocumentArray& answer) {
  Answers out;
  for (const auto& q : answer) {
    out.emplace_back();
    for (const auto& m : q.matches) out.back().emplace_back(m.id, m.scores.at("cosine").value);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(exported_topology)

BOOST_AUTO_TEST_CASE(the_kubernetes_export_started_as_local_processes_answers_as_the_flow_in_one_process) {
  TempDir dir;
  std::ofstream(dir.file("shop.yml")) << kFlowFile;
  auto r = run_command(std::string(DOCFLOW_FLOW_EXE) + " export kubernetes " + dir.file("shop.yml") + " " + dir.file("k8s"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::filesystem::create_directories(dir.path() / "data");
  ExportedTopology cluster(dir.path() / "k8s", dir.path() / "data", dir.path() / "pods");
  BOOST_TEST(cluster.processes() == 7u);  // 2 shards of pass with 2 replicas each, 2 of the indexer, the gateway

  // The same flow in this process, one index over all the documents.
  Flow local = Flow::from_config(parse_flow_text(
      "jtype: Flow\nwith: {name: one}\nexecutors:\n  - {name: pass}\n  - {name: indexer, uses: SimpleIndexer, with: {path: " +
      dir.file("one.log") + "}}\n"));
  local.open(dir.path() / "local");

  Client client(cluster.gateway().url());
  const DocumentArray docs = embedded(240, 5, "d");
  for (const auto& batch : docs.batches(40)) {
    const DocumentArray answer = client.post("/index", batch);
    BOOST_REQUIRE_EQUAL(answer.size(), batch.size());
    for (std::size_t i = 0; i < answer.size(); ++i) BOOST_TEST(answer[i].id == batch[i].id);
    local.post("/index", batch);
  }
  const DocumentArray queries = embedded(8, 6, "q");
  Value p = Value::map();
  p["limit"] = 12;
  const Answers there = matches_of(client.post("/search", queries, p));
  const Answers here = matches_of(local.post("/search", queries, p));
  BOOST_REQUIRE_EQUAL(there.size(), here.size());
  for (std::size_t q = 0; q < here.size(); ++q) {
    BOOST_REQUIRE_EQUAL(there[q].size(), 12u);
    BOOST_REQUIRE_EQUAL(there[q].size(), here[q].size());
    for (std::size_t j = 0; j < here[q].size(); ++j) {
      BOOST_TEST(there[q][j].first == here[q][j].first, "query " << q << " match " << j);
      BOOST_TEST(there[q][j].second == here[q][j].second, boost::test_tools::tolerance(1e-6));
    }
  }
  local.close();
  // Each shard's pod kept its part of the index in its own run folder.
  for (const char* shard : {"indexer-0-0", "indexer-1-0"}) {
    const auto log = dir.path() / "data/runs" / shard / "executors/indexer/index.log";
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(log), log);
    BOOST_TEST(std::filesystem::file_size(log) > 60 * 64u, log);
  }
}

BOOST_AUTO_TEST_SUITE_END()
