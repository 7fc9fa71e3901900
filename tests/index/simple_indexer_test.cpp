// SimpleIndexer: every endpoint with per-request parameters, durability
// across reopening, a torn tail, and kill -9 during a stream of /index
// requests through a served flow.
#include <boost/test/unit_test.hpp>

#include <ATen/ATen.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/client.hpp"
#include "docflow/flow.hpp"

using namespace docflow;
using docarray::Document;
using docarray::DocumentArray;
using docarray::Value;
using docflow::testing::TempDir;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// As served: a failed request answers with its error and the flow goes on.
Flow indexer_flow(const std::string& log_path) {
  Flow f = Flow::from_config(parse_flow_text("jtype: Flow\nwith: {name: idx}\nexecutors:\n  - name: indexer\n"
                                             "    uses: SimpleIndexer\n    with: {path: " + log_path + ", limit: 3}\n"));
  f.isolate_failures(true);
  return f;
}

DocumentArray embedded(int n, int dim = 8, int seed = 0) {
  at::manual_seed(seed);
  DocumentArray docs;
  for (int i = 0; i < n; ++i) {
    Document d("doc" + std::to_string(i));
    d.embedding = at::randn({dim});
    d.tags["i"] = i;
    docs.append(std::move(d));
  }
  return docs;
}

DocumentArray query_like(const Document& d) {
  DocumentArray q;
  Document doc;
  doc.embedding = d.embedding.clone();
  q.append(std::move(doc));
  return q;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(simple_indexer)

BOOST_AUTO_TEST_CASE(every_endpoint_with_parameters_per_request) {
  TempDir dir;
  Flow flow = indexer_flow(dir.file("index.log"));
  flow.open(dir.path() / "ws");
  DocumentArray docs = embedded(50);
  flow.post("/index", docs);
  DocumentArray r = flow.post("/search", query_like(docs[7]));
  BOOST_REQUIRE_EQUAL(r[0].matches.size(), 3u);  // the flow's limit
  BOOST_TEST(r[0].matches[0].id == "doc7");
  BOOST_TEST(r[0].matches[0].scores.at("cosine").value < 1e-5);
  Value p = Value::map();
  p["limit"] = 10;
  p["metric"] = "euclidean";
  r = flow.post("/search", query_like(docs[7]), p);
  BOOST_TEST(r[0].matches.size() == 10u);
  BOOST_TEST(r[0].matches[0].scores.count("euclidean") == 1u);

  // Documents added after a search are searched too (the stacked embeddings grow).
  DocumentArray more = embedded(70, 8, 5);
  for (std::size_t i = 0; i < more.size(); ++i) more[i].id = "more" + std::to_string(i);
  flow.post("/index", more);
  r = flow.post("/search", query_like(more[69]));
  BOOST_TEST(r[0].matches[0].id == "more69");
  Value drop = Value::map();
  std::vector<Value> ids;
  for (std::size_t i = 0; i < more.size(); ++i) ids.emplace_back("more" + std::to_string(i));
  drop["ids"] = Value(Value::List(ids.begin(), ids.end()));
  flow.post("/delete", {}, drop);

  // update replaces the embedding: doc7 now sits where doc3 was.
  DocumentArray upd;
  Document moved("doc7");
  moved.embedding = docs[3].embedding.clone() * 2;
  upd.append(moved);
  flow.post("/update", upd);
  r = flow.post("/search", query_like(docs[3]));
  std::set<std::string> top = {r[0].matches[0].id, r[0].matches[1].id};
  BOOST_TEST(top.count("doc7") == 1u);
  BOOST_TEST(contains(error_of([&] {
                        DocumentArray ghost;
                        Document g("ghost");
                        g.embedding = at::randn({8});
                        ghost.append(g);
                        flow.post("/update", ghost);
                      }),
                      "not in the index: 'ghost'"));

  // delete by parameters.ids and by the documents sent.
  Value del = Value::map();
  del["ids"] = Value::list({"doc3", "doc7"});
  flow.post("/delete", {}, del);
  DocumentArray by_doc;
  by_doc.append(Document("doc4"));
  flow.post("/delete", by_doc);
  p = Value::map();
  p["limit"] = 100;
  r = flow.post("/search", query_like(docs[3]), p);
  BOOST_TEST(r[0].matches.size() == 47u);
  for (const auto& m : r[0].matches) BOOST_TEST((m.id != "doc3" && m.id != "doc7" && m.id != "doc4"));

  // A document without an embedding is refused, naming it; nothing changes.
  DocumentArray bad = embedded(2, 8, 9);
  bad[1].embedding = at::Tensor();
  const std::string e = error_of([&] { flow.post("/index", bad); });
  BOOST_TEST(contains(e, "executor 'indexer' on /index: document 'doc1' has no embedding"), e);
  DocumentArray wider = embedded(1, 16, 4);
  wider[0].id = "wide";
  const std::string w = error_of([&] { flow.post("/index", wider); });
  BOOST_TEST(contains(w, "document 'wide' has an embedding of 16 values; the index's have 8"), w);
  flow.close();

  // Reopened: the deletes, the update and the failed request are as they were.
  Flow again = indexer_flow(dir.file("index.log"));
  again.open(dir.path() / "ws");
  r = again.post("/search", query_like(docs[3]), p);
  BOOST_TEST(r[0].matches.size() == 47u);
  again.post("/clear", {});
  r = again.post("/search", query_like(docs[3]), p);
  BOOST_TEST(r[0].matches.empty());
  again.close();
  Flow cleared = indexer_flow(dir.file("index.log"));
  cleared.open(dir.path() / "ws");
  BOOST_TEST(cleared.post("/search", query_like(docs[3]), p)[0].matches.empty());
  cleared.close();
}

BOOST_AUTO_TEST_CASE(each_embedding_is_held_once_in_the_search_matrix) {
  // The indexer keeps one matrix for /search; the documents' embeddings are
  // its rows, not copies beside it (half the memory of a large index). Seen
  // from outside: the matches of a search, copies of stored documents,
  // share one storage, across appends that grow the matrix.
  TempDir dir;
  Flow f = indexer_flow(dir.file("idx.log"));
  f.open();
  const DocumentArray docs = embedded(300, 16);
  for (std::size_t at = 0; at < docs.size(); at += 25) {  // appends: the matrix grows and moves
    DocumentArray part;
    for (std::size_t i = at; i < at + 25; ++i) part.append(docs[i]);
    f.post("/index", part);
  }
  Value p = Value::map();
  p["limit"] = 20;
  DocumentArray q = f.post("/search", query_like(docs[7]), p);
  BOOST_REQUIRE_EQUAL(q[0].matches.size(), 20u);
  BOOST_TEST(q[0].matches[0].id == "doc7");
  const void* storage = q[0].matches[0].embedding.storage().data();
  for (const auto& m : q[0].matches) {
    BOOST_TEST(m.embedding.storage().data() == storage);
    const auto i = static_cast<std::size_t>(std::stoi(m.id.substr(3)));
    BOOST_TEST(at::equal(m.embedding, docs[i].embedding));  // the right row
  }
  f.close();
}

BOOST_AUTO_TEST_CASE(a_torn_tail_is_cut_with_a_warning_and_nothing_acknowledged_is_lost) {
  TempDir dir;
  const std::string log = dir.file("index.log");
  {
    Flow flow = indexer_flow(log);
    flow.open(dir.path() / "ws");
    flow.post("/index", embedded(20));
    flow.close();
  }
  const auto intact = std::filesystem::file_size(log);
  {
    // A crash in the middle of the next append: its length says 5000 bytes.
    std::ofstream out(log, std::ios::app | std::ios::binary);
    const std::uint32_t len = 5000, crc = 0;
    out.write(reinterpret_cast<const char*>(&len), 4).write(reinterpret_cast<const char*>(&crc), 4) << "partial";
  }
  Flow flow = indexer_flow(log);
  flow.open(dir.path() / "ws");
  BOOST_TEST(std::filesystem::file_size(log) == intact);
  Value p = Value::map();
  p["limit"] = 100;
  DocumentArray docs = embedded(20);
  BOOST_TEST(flow.post("/search", query_like(docs[0]), p)[0].matches.size() == 20u);
  flow.post("/index", embedded(5, 8, 3));  // appends after the cut
  flow.close();
  Flow again = indexer_flow(log);
  again.open(dir.path() / "ws");
  BOOST_TEST(again.post("/search", query_like(docs[0]), p)[0].matches.size() == 20u);  // same ids doc0..doc4 replaced
  again.close();

  // A file that is not an index log is refused, not overwritten.
  std::ofstream(dir.file("other.log")) << "hello";
  Flow wrong = indexer_flow(dir.file("other.log"));
  BOOST_TEST(contains(error_of([&] { wrong.open(dir.path() / "ws2"); }), "is not a docflow index log"));
}

BOOST_AUTO_TEST_CASE(excluded_fields_are_neither_stored_nor_returned) {
  TempDir dir;
  auto flow_with = [&](const std::string& with) {
    Flow f = Flow::from_config(parse_flow_text("jtype: Flow\nwith: {name: idx}\nexecutors:\n  - name: indexer\n"
                                               "    uses: SimpleIndexer\n    with: {path: " + dir.file("index.log") +
                                               ", limit: 2, " + with + "}\n"));
    f.isolate_failures(true);
    return f;
  };
  Flow flow = flow_with("exclude_fields: tensor, match_exclude_fields: 'embedding, tags'");
  flow.open(dir.path() / "ws");
  DocumentArray docs = embedded(5);
  for (auto& d : docs) {
    d.tensor = at::ones({3, 4, 4});
    d.blob = "png";
    d.mime_type = "image/png";
  }
  flow.post("/index", docs);
  DocumentArray r = flow.post("/search", query_like(docs[2]));
  BOOST_REQUIRE_EQUAL(r[0].matches.size(), 2u);
  const Document& m = r[0].matches[0];
  BOOST_TEST(m.id == "doc2");
  BOOST_TEST(!m.tensor.defined());
  BOOST_TEST(!m.embedding.defined());
  BOOST_TEST(m.tags.is_null());
  BOOST_TEST(m.blob == "png");
  // Per request, as Jina's parameters: this time the embeddings and tags come back.
  Value p = Value::map();
  p["match_exclude_fields"] = "";
  r = flow.post("/search", query_like(docs[2]), p);
  BOOST_TEST(r[0].matches[0].embedding.defined());
  BOOST_TEST(r[0].matches[0].tags.find("i")->as_int() == 2);
  BOOST_TEST(!r[0].matches[0].tensor.defined());  // never stored
  p["match_exclude_fields"] = "colour";
  BOOST_TEST(contains(error_of([&] { flow.post("/search", query_like(docs[2]), p); }),
                      "match_exclude_fields: unknown field 'colour' (expected some of: embedding, tensor,"));

  // One process owns an index: a second flow on the same file is refused while the first is open.
  Flow second = flow_with("metric: dot");
  const std::string e = error_of([&] { second.open(dir.path() / "ws2"); });
  BOOST_TEST(contains(e, "is open in another process"), e);
  flow.close();
  second.open(dir.path() / "ws2");  // free again
  second.close();

  // An index cannot drop the embedding it matches with.
  Flow wrong = flow_with("exclude_fields: embedding");
  BOOST_TEST(contains(error_of([&] { wrong.open(dir.path() / "ws3"); }),
                      "exclude_fields: unknown field 'embedding' (expected some of: tensor, blob"));
}

BOOST_AUTO_TEST_CASE(compaction_keeps_every_live_document_across_several_records) {
  TempDir dir;
  const std::string log = dir.file("index.log");
  Value p = Value::map();
  p["limit"] = 100000;
  DocumentArray docs = embedded(2500);
  {
    Flow flow = indexer_flow(log);
    flow.open(dir.path() / "ws");
    for (auto& batch : docs.batches(100)) flow.post("/index", batch);
    for (int i = 0; i < 20; ++i) {
      Value del = Value::map();
      del["ids"] = Value::list({"doc" + std::to_string(i * 7)});
      flow.post("/delete", {}, del);
    }
    flow.close();
  }
  const auto before = std::filesystem::file_size(log);
  for (int open = 0; open < 2; ++open) {  // the first open compacts, the second reads the compacted log
    Flow flow = indexer_flow(log);
    flow.open(dir.path() / "ws");
    DocumentArray r = flow.post("/search", query_like(docs[1]), p);
    BOOST_TEST(r[0].matches.size() == 2480u);
    std::set<std::string> ids;
    for (const auto& m : r[0].matches) ids.insert(m.id);
    BOOST_TEST(ids.size() == 2480u);
    BOOST_TEST(ids.count("doc7") == 0u);
    BOOST_TEST(ids.count("doc8") == 1u);
    flow.close();
  }
  BOOST_TEST(std::filesystem::file_size(log) < before);
}

BOOST_AUTO_TEST_CASE(kill_9_during_a_stream_of_index_requests_loses_no_acknowledged_document) {
  TempDir dir;
  const std::string log = dir.file("index.log");
  const std::string flow_file = dir.file("serve.yml");
  std::ofstream(flow_file) << "jtype: Flow\nwith: {name: idx, workspace: " << dir.file("runs")
                           << ", port: 0}\nexecutors:\n  - {name: indexer, uses: SimpleIndexer, with: {path: " << log << "}}\n";
  auto r = docflow::testing::run_command(std::string(DOCFLOW_FLOW_EXE) + " serve " + flow_file + " --detach");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::ifstream status_file(dir.file("runs") + "/idx/status.json");
  nlohmann::json status = nlohmann::json::parse(status_file);
  const std::string url = status["address"];
  const pid_t pid = status["pid"].get<long>();

  std::vector<std::string> acknowledged;
  std::atomic<bool> killed{false};
  std::thread writer([&] {
    ClientOptions o;
    o.retries = 0;
    o.binary = true;
    o.in_flight = 1;
    try {
      Client client(url, o);
      for (int batch = 0; batch < 100000 && !killed; ++batch) {
        DocumentArray docs = embedded(10, 16, batch);
        for (std::size_t i = 0; i < docs.size(); ++i) docs[i].id = "b" + std::to_string(batch) + "-" + std::to_string(i);
        DocumentArray back = client.post("/index", docs);
        for (const auto& d : back) acknowledged.push_back(d.id);
      }
    } catch (const std::exception&) {
      // The server died mid-request: that request was never acknowledged.
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  ::kill(pid, SIGKILL);
  killed = true;
  writer.join();
  BOOST_TEST_MESSAGE("acknowledged " << acknowledged.size() << " documents before kill -9");
  BOOST_REQUIRE(acknowledged.size() > 0u);

  Flow flow = indexer_flow(log);
  flow.open(dir.path() / "ws");
  Value p = Value::map();
  p["limit"] = 1000000;
  DocumentArray q;
  Document probe;
  probe.embedding = at::randn({16});
  q.append(probe);
  DocumentArray found = flow.post("/search", q, p);
  std::set<std::string> ids;
  for (const auto& m : found[0].matches) ids.insert(m.id);
  BOOST_TEST(ids.size() == found[0].matches.size());  // none twice
  std::size_t missing = 0;
  for (const auto& id : acknowledged) missing += ids.count(id) == 0;
  BOOST_TEST(missing == 0u);
  // At most the one request in flight at the kill is there unacknowledged.
  BOOST_TEST(ids.size() <= acknowledged.size() + 10);
  flow.close();
}

BOOST_AUTO_TEST_SUITE_END()
