// The runtime with real executors loaded from the test plugin.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <pthread.h>
#include <future>
#include <set>
#include <sstream>

#include "../support/temp_dir.hpp"
#include "docflow/flow.hpp"

using docflow::Flow;
using docflow::testing::TempDir;

namespace {

Flow flow_of(const std::string& executors_yaml, int prefetch = 4) {
  std::string yaml = "jtype: Flow\nwith:\n  name: test\n  prefetch: " + std::to_string(prefetch) +
                     "\n  plugins: [" TEST_PLUGIN_DIR "]\nexecutors:\n" + executors_yaml;
  return Flow::from_config(docflow::parse_flow_text(yaml, "test.yml"));
}

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> expected_record(int n, int epochs) {
  std::vector<std::string> out;
  for (int e = 0; e < epochs; ++e) {
    for (int i = 0; i < n; ++i) out.push_back("doc " + std::to_string(i));
    out.push_back("end-of-epoch " + std::to_string(e));
  }
  out.push_back("end-of-stream");
  return out;
}

struct QuietLogger : docflow::Logger {
  QuietLogger() { set_terminal(false); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(runtime)

BOOST_AUTO_TEST_CASE(order_is_kept_through_replicas_and_events_follow_data) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: source, uses: Counter, with: {n: 60, batch_size: 1, epochs: 2}}
  - {name: slow, uses: Sleeper, replicas: 3, with: {max_ms: 3}}
  - {name: record, uses: Recorder}
)", 16);
  QuietLogger log;
  flow.open(ws.path(), &log);
  std::vector<std::int64_t> seen;
  std::set<std::int64_t> replicas;
  docflow::RunStats stats = flow.run([&](const docflow::Request& r) {
    for (const auto& d : r.docs) {
      seen.push_back(d.find_tag("i")->as_int());
      replicas.insert(d.find_tag("replica")->as_int());
    }
  });
  flow.close();
  BOOST_TEST(stats.requests == 120u);
  BOOST_TEST(stats.epochs == 2u);
  BOOST_TEST(replicas.size() == 3u);  // the work was spread
  std::vector<std::int64_t> expected;
  for (int e = 0; e < 2; ++e)
    for (int i = 0; i < 60; ++i) expected.push_back(i);
  BOOST_TEST(seen == expected, boost::test_tools::per_element());
  BOOST_TEST(lines_of(ws.path() / "record" / "record.txt") == expected_record(60, 2), boost::test_tools::per_element());
  // Replicas have workspaces of their own.
  BOOST_TEST(std::filesystem::is_directory(ws.path() / "slow" / "replica-2"));
}

BOOST_AUTO_TEST_CASE(branches_join_by_id_and_events_pass_every_branch) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: source, uses: Counter, with: {n: 20, batch_size: 3}}
  - {name: left, uses: Tagger, with: {key: left}, needs: source}
  - {name: right, uses: Sleeper, needs: source, with: {max_ms: 2}}
  - {name: right_record, uses: Recorder, needs: right}
  - {name: join, uses: Recorder, needs: [left, right_record]}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  std::vector<docarray::Document> out;
  flow.run([&](const docflow::Request& r) {
    for (const auto& d : r.docs) out.push_back(d);
  });
  flow.close();
  BOOST_REQUIRE(out.size() == 20u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    BOOST_TEST(out[i].find_tag("i")->as_int() == static_cast<std::int64_t>(i));
    BOOST_TEST(out[i].find_tag("left")->as_bool());   // from one branch
    BOOST_TEST(out[i].find_tag("replica")->as_int() == 0);  // from the other
  }
  BOOST_TEST(lines_of(ws.path() / "join" / "record.txt") == expected_record(20, 1), boost::test_tools::per_element());
  BOOST_TEST(lines_of(ws.path() / "right_record" / "record.txt") == expected_record(20, 1), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(when_routes_documents_to_branches) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: source, uses: Counter, with: {n: 10, batch_size: 4}}
  - {name: small, uses: Tagger, needs: source, with: {key: size, value: small}, when: {tags.i: {$lt: 4}}}
  - {name: large, uses: Tagger, needs: source, with: {key: size, value: large}, when: {tags.i: {$gte: 4}}}
  - {name: join, uses: Recorder, needs: [small, large]}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  std::map<std::int64_t, std::string> size_of;
  flow.run([&](const docflow::Request& r) {
    for (const auto& d : r.docs) size_of[d.find_tag("i")->as_int()] = d.find_tag("size")->as_string();
  });
  flow.close();
  BOOST_REQUIRE(size_of.size() == 10u);
  for (const auto& [i, size] : size_of) BOOST_TEST(size == (i < 4 ? "small" : "large"));
}

BOOST_AUTO_TEST_CASE(first_failure_stops_the_run_and_closes_every_executor) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: source, uses: Counter, with: {n: 1000, batch_size: 1}}
  - {name: fail, uses: Failer, with: {after: 5, message: "disk on fire"}}
  - {name: record, uses: Recorder}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  try {
    flow.run();
    BOOST_FAIL("expected the run to fail");
  } catch (const docflow::ExecutorError& e) {
    BOOST_TEST(std::string(e.what()) == "executor 'fail' on /index: disk on fire");
    BOOST_TEST(e.executor() == "fail");
  }
  flow.close();
  BOOST_TEST(lines_of(ws.path() / "fail" / "closed") == std::vector<std::string>{"5"});
  // The recorder was closed too. It saw at most the four requests before the
  // failure (those still queued when it happened are dropped), and no event.
  auto record = lines_of(ws.path() / "record" / "record.txt");
  BOOST_TEST(std::filesystem::exists(ws.path() / "record" / "record.txt"));
  BOOST_TEST(record.size() <= 4u);
  for (const auto& line : record) BOOST_TEST(line.rfind("doc ", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(failed_open_closes_what_opened_and_never_calls_the_failed_one) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: record, uses: Recorder}
  - {name: fail, uses: Failer, with: {in_open: true, message: "no GPU"}}
)");
  QuietLogger log;
  try {
    flow.open(ws.path(), &log);
    BOOST_FAIL("expected open to fail");
  } catch (const docflow::ExecutorError& e) {
    BOOST_TEST(std::string(e.what()) == "executor 'fail': open failed: no GPU");
  }
  BOOST_TEST(std::filesystem::exists(ws.path() / "record" / "record.txt"));  // opened, then closed
  BOOST_TEST(std::filesystem::exists(ws.path() / "fail" / "opened"));
  BOOST_TEST(!std::filesystem::exists(ws.path() / "fail" / "closed"));
  BOOST_TEST(!flow.is_open());
}

BOOST_AUTO_TEST_CASE(shared_resources_by_name) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: model, uses: Publisher, with: {resource: clip}}
  - {name: a, uses: Consumer, with: {resource: clip}}
  - {name: b, uses: Consumer, with: {resource: clip}}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  docarray::DocumentArray docs({docarray::Document("x"), docarray::Document("y")});
  auto out = flow.post("/index", docs);
  BOOST_TEST(out[1].find_tag("count")->as_int() == 4);  // a counted 2, then b counted 2 more on the same object
  flow.close();

  Flow missing = flow_of(R"(
  - {name: a, uses: Consumer, with: {resource: clip}}
)");
  try {
    missing.open(ws.path(), &log);
    BOOST_FAIL("expected open to fail");
  } catch (const docflow::ExecutorError& e) {
    BOOST_TEST(std::string(e.what()).find("no shared resource named 'clip' (published: none)") != std::string::npos,
               e.what());
  }
}

BOOST_AUTO_TEST_CASE(embedding_api_post_sync_and_with_callbacks) {
  TempDir ws;
  Flow flow;
  flow.plugin_path(TEST_PLUGIN_DIR)
      .add("Tagger", "tag", docarray::Value::map(), {}, 1)
      .add("Sleeper", "slow", docarray::Value::map(), {}, 2);
  QuietLogger log;
  flow.open(ws.path(), &log);
  docarray::DocumentArray out = flow.post("/search", docarray::DocumentArray({docarray::Document("q")}));
  BOOST_TEST(out.size() == 1u);
  BOOST_TEST(out[0].find_tag("seen")->as_bool());

  std::mutex m;
  std::vector<std::string> order;
  for (int i = 0; i < 50; ++i) {
    docarray::DocumentArray one({docarray::Document("d" + std::to_string(i))});
    flow.post("/index", one, {}, [&](docflow::Response r) {
      std::lock_guard<std::mutex> lock(m);
      BOOST_TEST(!r.error);
      order.push_back(r.request.docs[0].id);
    });
  }
  flow.wait();
  flow.close();
  BOOST_REQUIRE(order.size() == 50u);
  for (int i = 0; i < 50; ++i) BOOST_TEST(order[i] == "d" + std::to_string(i));  // responses in posting order
}

// A request runs through consecutive executors on the thread that finished
// the previous one, nested up to a bound; a callback that posts the next
// request must neither deadlock on its own answer's turn (a chain shorter
// than the bound would carry it to the output inside the callback) nor
// grow the stack without end (a chain longer than the bound). 2,000
// requests each, every one posted by the previous one's callback.
BOOST_AUTO_TEST_CASE(callbacks_that_post_the_next_request_through_short_and_long_chains) {
  for (int length : {1, 3, 12}) {
    TempDir ws;
    std::string chain;
    for (int i = 0; i < length; ++i) chain += "  - {name: t" + std::to_string(i) + ", uses: Tagger}\n";
    Flow flow = flow_of(chain, 2);
    QuietLogger log;
    flow.open(ws.path(), &log);
    constexpr int kRequests = 2000;
    std::promise<void> all_answered;
    std::atomic<int> wrong{0};
    std::function<void(int)> post_from = [&](int i) {
      if (i == kRequests) return all_answered.set_value();
      flow.post("/index", docarray::DocumentArray({docarray::Document("d" + std::to_string(i))}), {},
                [&, i](docflow::Response r) {
                  if (r.error || r.request.docs.size() != 1 || r.request.docs[0].id != "d" + std::to_string(i) ||
                      !r.request.docs[0].find_tag("seen"))
                    ++wrong;
                  post_from(i + 1);
                });
    };
    post_from(0);
    if (all_answered.get_future().wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
      std::fprintf(stderr, "a chain of %d: no answer for 120 s (deadlocked)\n", length);
      std::abort();  // close() would wait for the stuck requests too
    }
    flow.close();
    BOOST_TEST(wrong.load() == 0, "a chain of " << length);
  }
}

// A local executor that takes microseconds runs on the thread that posts to
// it (as a GStreamer element runs on the pushing thread), once the runtime
// has timed a few of its requests; one that takes milliseconds always goes
// to the flow's pool. Seen from inside: each tags the documents with the
// thread it ran on. Counted, not required of every request: a request timed
// while the machine preempted the thread makes the light one look heavy for
// a while (bounded: the mean weighs each new sample by 1/4).
BOOST_AUTO_TEST_CASE(light_executors_run_on_the_posting_thread_heavy_ones_on_the_pool) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: light, uses: ThreadMarker, with: {key: light}}
  - {name: heavy, uses: ThreadMarker, with: {key: heavy, sleep_us: 2000}}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  const auto me = static_cast<std::int64_t>(::pthread_self());
  constexpr int kRequests = 400;
  int light_here = 0, heavy_here = 0;
  for (int i = 0; i < kRequests; ++i) {
    const docarray::DocumentArray out = flow.post("/index", docarray::DocumentArray({docarray::Document("d" + std::to_string(i))}));
    BOOST_REQUIRE(out.size() == 1u);
    light_here += out[0].find_tag("light")->as_int() == me;
    heavy_here += out[0].find_tag("heavy")->as_int() == me;
  }
  flow.close();
  BOOST_TEST(light_here >= kRequests / 4, light_here << " of " << kRequests << " light requests ran on the posting thread");
  BOOST_TEST(heavy_here == 0, heavy_here << " heavy requests ran on the posting thread");
}

BOOST_AUTO_TEST_CASE(unbound_endpoints_pass_through) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: only_train, uses: Tagger, with: {endpoint: /train}}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  auto searched = flow.post("/search", docarray::DocumentArray({docarray::Document("a")}));
  auto trained = flow.post("/train", docarray::DocumentArray({docarray::Document("a")}));
  flow.close();
  BOOST_TEST(!searched[0].find_tag("seen"));
  BOOST_TEST(trained[0].find_tag("seen")->as_bool());
}

BOOST_AUTO_TEST_CASE(post_reports_a_failure_and_later_posts_fail_fast) {
  TempDir ws;
  Flow flow = flow_of(R"(
  - {name: fail, uses: Failer, with: {after: 1, message: bad input}}
)");
  QuietLogger log;
  flow.open(ws.path(), &log);
  BOOST_CHECK_THROW(flow.post("/index", docarray::DocumentArray({docarray::Document("a")})), docflow::ExecutorError);
  BOOST_CHECK_THROW(flow.post("/index", docarray::DocumentArray({docarray::Document("b")})), docflow::ExecutorError);
  flow.close();
  BOOST_TEST(lines_of(ws.path() / "fail" / "closed") == std::vector<std::string>{"1"});
}

BOOST_AUTO_TEST_SUITE_END()
