// Remote executors: `flow executor` processes on loopback, used from a flow
// by `host` + `port` (or `hosts`): the same output and events as a local
// executor, replicas that survive kill -9 of one of them and take it back,
// and errors that name the executor and the address.
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/file_bytes.hpp"
#include "../support/detached_service.hpp"
#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/client.hpp"
#include "docflow/error.hpp"
#include "docflow/flow.hpp"
#include "docflow/gateway.hpp"

using namespace docflow;
using docflow::testing::run_command;
using docflow::testing::TempDir;

using docflow::testing::file_bytes;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// `flow executor` in the background, its test plugins loaded.
class ExecutorProcess : public docflow::testing::DetachedService {
 public:
  ExecutorProcess(const TempDir& dir, const std::string& name, const std::string& args, int port = 0)
      : DetachedService(std::string(DOCFLOW_FLOW_EXE) + " executor " + args + " --plugins " TEST_PLUGIN_DIR " --name " + name +
                            " --workspace " + dir.file("runs") + " --port " + std::to_string(port) + " --detach",
                        dir.file("runs/" + name + "/status.json")),
        dir_(dir),
        name_(name) {}
  std::string workspace_file(const std::string& file) const {
    return dir_.file("runs/" + name_ + "/executors/" + name_ + "/" + file);
  }

 private:
  const TempDir& dir_;
  std::string name_;
};

Flow flow_of(const std::string& executors) {
  return Flow::from_config(parse_flow_text("jtype: Flow\nwith: {name: f, plugins: [" TEST_PLUGIN_DIR "]}\nexecutors:\n" + executors));
}

std::string config_error(const std::string& executors) {
  try {
    flow_of(executors);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string tag_of_local(Flow& f) {
  docarray::DocumentArray docs;
  docs.append(docarray::Document("x"));
  return f.post("/index", docs)[0].find_tag("by")->as_string();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(remote_executors)

BOOST_AUTO_TEST_CASE(a_batch_run_through_a_remote_executor_sees_what_a_local_one_sees) {
  TempDir dir;
  const std::string source = "  - {name: src, uses: Counter, with: {n: 12, batch_size: 5, epochs: 2}}\n";
  // Local: the recorder in this process.
  std::vector<std::string> local_out, remote_out;
  {
    Flow f = flow_of(source + "  - {name: rec, uses: Recorder}\n  - {name: tag, uses: Tagger, with: {key: after}}\n");
    f.open(dir.path() / "local");
    f.run([&](const Request& r) {
      for (const auto& d : r.docs) local_out.push_back(d.id + (d.find_tag("after") ? "+" : "-"));
    });
    f.close();
  }
  // Remote: the same recorder served by `flow executor`.
  ExecutorProcess rec(dir, "rec", "--uses Recorder");
  {
    // -1: no limit (Jina's way of saying it).
    Flow f = flow_of(source + "  - {name: rec, host: 127.0.0.1, port: " + std::to_string(rec.port()) +
                     ", external: true, timeout_ready: -1, timeout_send: -1}\n  - {name: tag, uses: Tagger, with: {key: after}}\n");
    f.open(dir.path() / "remote");
    f.run([&](const Request& r) {
      for (const auto& d : r.docs) remote_out.push_back(d.id + (d.find_tag("after") ? "+" : "-"));
    });
    f.close();
  }
  rec.stop(SIGTERM);  // its close() writes what it saw
  BOOST_TEST(local_out == remote_out);
  BOOST_TEST(local_out.size() == 24u);
  const std::string local_record = file_bytes((dir.path() / "local/rec/record.txt").string());
  const std::string remote_record = file_bytes(rec.workspace_file("record.txt"));
  BOOST_TEST(!local_record.empty());
  BOOST_TEST(remote_record == local_record);  // every document and event, in order
  BOOST_TEST(contains(remote_record, "end-of-epoch 0\n"), remote_record);
  BOOST_TEST(contains(remote_record, "end-of-epoch 1\nend-of-stream\n"), remote_record);
}

BOOST_AUTO_TEST_CASE(replicas_survive_kill_9_of_one_and_take_it_back) {
  TempDir dir;
  ExecutorProcess r0(dir, "r0", "--uses Tagger --set key=by --set value=r0");
  auto r1 = std::make_unique<ExecutorProcess>(dir, "r1", "--uses Tagger --set key=by --set value=r1");
  const int port1 = r1->port();
  Flow f = flow_of("  - {name: tag, hosts: [" + r0.address() + ", " + r1->address() + "]}\n");
  f.isolate_failures(true);
  f.open(dir.path() / "ws");
  auto post_one = [&](int i) {
    docarray::DocumentArray docs;
    docs.append(docarray::Document("d" + std::to_string(i)));
    docarray::DocumentArray out = f.post("/index", docs);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_REQUIRE(out[0].id == "d" + std::to_string(i));
    return out[0].find_tag("by")->as_string();
  };
  std::map<std::string, int> by;
  for (int i = 0; i < 20; ++i) ++by[post_one(i)];
  BOOST_TEST(by["r0"] == 10);  // round robin over the replicas
  BOOST_TEST(by["r1"] == 10);
  // kill -9 of one replica under load: 200 requests in flight 8 at a time,
  // the kill after the first 50 answers. Every request answered once, none failed.
  {
    std::mutex m;
    std::condition_variable cv;
    std::map<std::string, int> answered;  // id -> times
    int failures = 0, done = 0;
    for (int i = 20; i < 220; ++i) {
      docarray::DocumentArray docs;
      docs.append(docarray::Document("d" + std::to_string(i)));
      f.post("/index", std::move(docs), {}, [&](Response r) {
        std::lock_guard<std::mutex> lock(m);
        if (r.error || r.request.docs.size() != 1) ++failures;
        else ++answered[r.request.docs[0].id];
        ++done;
        cv.notify_all();
      });
      if (i == 70) r1->stop(SIGKILL);
    }
    std::unique_lock<std::mutex> lock(m);
    BOOST_REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == 200; }));
    BOOST_TEST(failures == 0);
    BOOST_TEST(answered.size() == 200u);
    for (const auto& [id, times] : answered) BOOST_TEST(times == 1, id);
  }
  by.clear();
  for (int i = 220; i < 240; ++i) ++by[post_one(i)];  // the lost replica's turns go to the other
  BOOST_TEST(by["r0"] == 20);
  // Back on its port: after the down period it gets requests again.
  r1 = std::make_unique<ExecutorProcess>(dir, "r1b", "--uses Tagger --set key=by --set value=r1", port1);
  std::this_thread::sleep_for(std::chrono::milliseconds(5200));
  by.clear();
  for (int i = 240; i < 260; ++i) ++by[post_one(i)];
  BOOST_TEST(by["r1"] >= 5, "requests the restarted replica took: " << by["r1"]);
  f.close();
}

// One remote executor (one replica here, one connection) keeps several
// requests in flight: the remote side's Rendezvous lets a request go only
// when four are inside its four instances at once, so the four answers
// come only if all four requests were on the wire together (one at a time,
// as a blocking call would send them, the first fails after its timeout).
BOOST_AUTO_TEST_CASE(one_remote_executor_keeps_several_requests_in_flight) {
  TempDir dir;
  ExecutorProcess meet(dir, "meet", "--uses Rendezvous --set n=4 --set timeout_ms=20000 --replicas 4");
  Flow f = flow_of("  - {name: meet, host: 127.0.0.1, port: " + std::to_string(meet.port()) + "}\n");
  f.isolate_failures(true);
  f.open(dir.path() / "ws");
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> answers;
  for (int round = 0; round < 2; ++round)  // twice: the second four meet as a group of their own
    for (int i = 0; i < 4; ++i) {
      docarray::DocumentArray docs;
      docs.append(docarray::Document("d" + std::to_string(round * 4 + i)));
      f.post("/index", std::move(docs), {}, [&](Response r) {
        std::lock_guard<std::mutex> lock(m);
        if (r.error) {
          try {
            std::rethrow_exception(r.error);
          } catch (const std::exception& e) {
            answers.push_back(std::string("error: ") + e.what());
          }
        } else {
          answers.push_back(r.request.docs[0].id + " met " + std::to_string(r.request.docs[0].find_tag("met")->as_int()));
        }
        cv.notify_all();
      });
    }
  std::unique_lock<std::mutex> lock(m);
  BOOST_REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return answers.size() == 8; }));
  for (int i = 0; i < 8; ++i) BOOST_TEST(answers[i] == "d" + std::to_string(i) + " met 4");  // in order, each met three others
  lock.unlock();
  f.close();
}

// A served flow sends a remote executor's requests from the gateway's
// network thread that read them (no hand-off to another thread), on
// connections that live on that thread's io_context. The gateway may stop
// and go before its flow closes: its threads close those connections as
// they end, later requests go out from the remote executors' own io
// thread, and closing the flow then neither waits for threads that are gone
// nor touches what the gateway freed (AddressSanitizer runs this in CI).
BOOST_AUTO_TEST_CASE(a_flow_outlives_its_gateway_with_remote_connections_on_its_threads, *boost::unit_test::timeout(120)) {
  TempDir dir;
  ExecutorProcess tag(dir, "tag", "--uses Tagger --set key=remote --set value=7");
  Flow f = flow_of("  - {name: tag, host: 127.0.0.1, port: " + std::to_string(tag.port()) + "}\n");
  auto one = [](const std::string& id) {
    docarray::DocumentArray docs;
    docs.append(docarray::Document(id));
    return docs;
  };
  {
    GatewayOptions o;
    o.port = 0;
    o.io_threads = 2;
    Gateway g(f, o);
    f.open(dir.path() / "ws");
    g.start();
    // Two clients: connections go to the network threads in turn, so both
    // threads send to the remote executor.
    Client a(g.url()), b(g.url());
    for (int i = 0; i < 3; ++i)
      for (Client* c : {&a, &b}) {
        const docarray::DocumentArray out = c->post("/index", one("d" + std::to_string(i)));
        BOOST_REQUIRE_EQUAL(out.size(), 1u);
        BOOST_TEST(out[0].id == "d" + std::to_string(i));
        BOOST_REQUIRE(out[0].find_tag("remote"));
        BOOST_TEST(out[0].find_tag("remote")->as_int() == 7);
      }
    BOOST_TEST(g.stop());
  }  // the gateway, its threads and their io_contexts are gone
  const docarray::DocumentArray after = f.post("/index", one("after"));
  BOOST_REQUIRE_EQUAL(after.size(), 1u);
  BOOST_REQUIRE(after[0].find_tag("remote"));
  BOOST_TEST(after[0].find_tag("remote")->as_int() == 7);
  f.close();
}

// timeout_send bounds each request: a remote executor that takes longer
// fails that request (naming the executor, the address and the limit),
// without sending it again, and the next request gets a new connection.
BOOST_AUTO_TEST_CASE(timeout_send_fails_a_slow_request_and_the_next_one_gets_through) {
  TempDir dir;
  ExecutorProcess slow(dir, "slow", "--uses Misbehaver");
  Flow f = flow_of("  - {name: slow, host: 127.0.0.1, port: " + std::to_string(slow.port()) + ", timeout_send: 300}\n");
  f.isolate_failures(true);
  f.open(dir.path() / "ws");
  docarray::DocumentArray docs;
  docarray::Document d("late");
  d.tags["sleep_ms"] = 1200;
  docs.append(d);
  std::string e;
  try {
    f.post("/index", docs);
  } catch (const std::exception& x) {
    e = x.what();
  }
  BOOST_TEST(contains(e, "executor 'slow' on /index: at http://" + slow.address() + ": http://" + slow.address() +
                             " did not answer within timeout_send (300 ms)"),
             e);
  // The served flow answers in order: the next answer waits there until the
  // slow one is done, so it is sent once the slow one is over.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  docarray::DocumentArray quick;
  quick.append(docarray::Document("quick"));
  docarray::DocumentArray out = f.post("/index", quick);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(out[0].find_tag("misbehaver_saw") != nullptr);
  f.close();
}

// Jina's shards with replicas: `hosts: [[a, b], [c, d]]` is two shards of two
// replicas each. /index sends each document to the shard its id hashes to
// (always the same one), the shard's requests go round robin over its
// replicas, and a replica killed -9 leaves its shard served by the other.
BOOST_AUTO_TEST_CASE(shards_with_replicas_spread_over_each_shards_addresses) {
  TempDir dir;
  std::vector<std::unique_ptr<ExecutorProcess>> p;
  for (const char* name : {"s0r0", "s0r1", "s1r0", "s1r1"})
    p.push_back(std::make_unique<ExecutorProcess>(dir, name, std::string("--uses Tagger --set key=by --set value=") + name));
  Flow f = flow_of("  - {name: tag, shards: 2, polling: ANY, hosts: [[" + p[0]->address() + ", " + p[1]->address() + "], [" +
                   p[2]->address() + ", " + p[3]->address() + "]]}\n");
  BOOST_TEST(f.config().executors[0].replicas == 2);  // one per address of a shard
  f.isolate_failures(true);
  f.open(dir.path() / "ws");
  auto tag_of = [&](const std::string& id) {
    docarray::DocumentArray docs;
    docs.append(docarray::Document(id));
    docarray::DocumentArray out = f.post("/index", docs);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    return out[0].find_tag("by")->as_string();
  };
  std::map<std::string, int> by;
  std::map<std::string, char> shard_of;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "d" + std::to_string(i), who = tag_of(id);
    ++by[who];
    shard_of[id] = who[1];
  }
  for (const char* name : {"s0r0", "s0r1", "s1r0", "s1r1"}) BOOST_TEST(by[name] >= 4, name << " took " << by[name]);
  for (int i = 0; i < 40; ++i) {  // the same ids, the same shards
    const std::string id = "d" + std::to_string(i);
    BOOST_TEST(tag_of(id)[1] == shard_of[id], id);
  }
  p[1]->stop(SIGKILL);  // one replica of shard 0
  by.clear();
  for (int i = 0; i < 40; ++i) {
    const std::string id = "d" + std::to_string(i), who = tag_of(id);
    ++by[who];
    BOOST_TEST(who[1] == shard_of[id], id);
  }
  BOOST_TEST(by["s0r1"] == 0);
  BOOST_TEST(by["s0r0"] > 0);
  BOOST_TEST(by["s0r0"] + by["s1r0"] + by["s1r1"] == 40);
  f.close();

  // The same shape in this process: each shard of each replica in a workspace of its own.
  Flow local = flow_of("  - {name: tag, uses: Tagger, shards: 2, replicas: 2, with: {key: by, value: here}}\n");
  local.open(dir.path() / "local");
  BOOST_TEST(tag_of_local(local) == "here");
  local.close();
  for (const char* ws : {"tag-0/replica-0", "tag-0/replica-1", "tag-1/replica-0", "tag-1/replica-1"})
    BOOST_TEST(std::filesystem::is_directory(dir.path() / "local" / ws), ws);

  BOOST_TEST(contains(config_error("  - {name: tag, hosts: [[a:1, b:1], [c:1]]}\n"),
                      "executor 'tag': `hosts` as lists of addresses gives each shard its replicas, but the executor has no `shards`; "
                      "set shards: 2"));
  BOOST_TEST(contains(config_error("  - {name: tag, shards: 3, hosts: [[a:1, b:1], [c:1]]}\n"),
                      "executor 'tag': shards: 3 but 2 lists of addresses; give one per shard, in shard order"));
  BOOST_TEST(contains(config_error("  - {name: tag, shards: 2, replicas: 1, hosts: [[a:1, b:1], [c:1]]}\n"),
                      "executor 'tag': replicas: 1 but a shard has 2 addresses"));
  BOOST_TEST(contains(config_error("  - {name: tag, shards: 2, hosts: [[], [c:1]]}\n"), "a shard's list of `hosts` is empty"));
  // The resolved flow writes them back as given.
  const std::string yaml = to_yaml(parse_flow_text("jtype: Flow\nexecutors:\n  - {name: tag, shards: 2, hosts: [[a:1, b:1], [c:1, d:1]]}\n"));
  BOOST_TEST(contains(yaml, "hosts: [[a:1, b:1], [c:1, d:1]]"), yaml);
  BOOST_TEST(!contains(yaml, "replicas"), yaml);
}

// A `flow executor --token-file` wants its token from the flows that use
// it: `token_file` on the remote executor (DOCFLOW_TOKEN by default).
BOOST_AUTO_TEST_CASE(a_remote_executor_behind_a_token_gets_it_from_token_file) {
  TempDir dir;
  std::ofstream(dir.file("token")) << "s3cret\n";
  ExecutorProcess guarded(dir, "guarded", "--uses Tagger --set key=by --set value=guarded --token-file " + dir.file("token"));
  Flow with_token = flow_of("  - {name: tag, hosts: [" + guarded.address() + "], token_file: " + dir.file("token") + "}\n");
  with_token.open(dir.path() / "a");
  docarray::DocumentArray docs;
  docs.append(docarray::Document("d"));
  BOOST_TEST(with_token.post("/index", docs)[0].find_tag("by")->as_string() == "guarded");
  with_token.close();
  BOOST_TEST(contains(to_yaml(with_token.config()), "token_file: " + dir.file("token")));  // the path, never the token

  Flow without = flow_of("  - {name: tag, hosts: [" + guarded.address() + "], timeout_ready: 2000}\n");
  std::string e;
  try {
    without.open(dir.path() / "b");
  } catch (const Error& x) {
    e = x.what();
  }
  BOOST_TEST(contains(e, "executor 'tag'"), e);
  BOOST_TEST(contains(e, guarded.url()), e);
  BOOST_TEST(contains(e, "401"), e);
  BOOST_TEST(contains(config_error("  - {name: tag, uses: Tagger, token_file: x}\n"),
                      "executor 'tag': `token_file` is for a remote executor"));
  BOOST_TEST(contains(config_error("  - {name: tag, hosts: [127.0.0.1:9], token_file: " + dir.file("missing") + "}\n") +
                          [&] {
                            try {
                              flow_of("  - {name: tag, hosts: [127.0.0.1:9], token_file: " + dir.file("missing") + "}\n")
                                  .open(dir.path() / "c");
                            } catch (const Error& x) {
                              return std::string(x.what());
                            }
                            return std::string();
                          }(),
                      "cannot read the token file " + dir.file("missing")));
}

BOOST_AUTO_TEST_CASE(errors_name_the_executor_and_the_address) {
  TempDir dir;
  // Nothing listens there: open() gives up after timeout_ready.
  {
    Flow f = flow_of("  - {name: gone, host: 127.0.0.1, port: 1, timeout_ready: 300}\n");
    std::string e;
    try {
      f.open(dir.path() / "ws");
    } catch (const std::exception& x) {
      e = x.what();
    }
    BOOST_TEST(contains(e, "executor 'gone'"), e);
    BOOST_TEST(contains(e, "the remote executor at http://127.0.0.1:1 did not become ready within timeout_ready (300 ms)"), e);
  }
  // The remote executor's own failure comes back with its message.
  ExecutorProcess bad(dir, "bad", "--uses Misbehaver");
  Flow f = flow_of("  - {name: far, host: 127.0.0.1, port: " + std::to_string(bad.port()) + "}\n");
  f.isolate_failures(true);
  f.open(dir.path() / "ws2");
  docarray::DocumentArray docs;
  docarray::Document d("boom");
  d.tags["fail"] = true;
  docs.append(d);
  std::string e;
  try {
    f.post("/index", docs);
  } catch (const std::exception& x) {
    e = x.what();
  }
  BOOST_TEST(contains(e, "executor 'far' on /index: at http://" + bad.address()), e);
  BOOST_TEST(contains(e, "executor 'bad' on /index"), e);
  f.close();

  // Flow files.
  BOOST_TEST(contains(config_error("  - {name: x, hosts: [a:1, b:2], replicas: 1}\n"),
                      "executor 'x': replicas: 1 but 2 addresses; a remote executor needs a replica (a connection) per address"));
  BOOST_TEST(contains(config_error("  - {name: x, host: a, port: 1, with: {k: 1}}\n"),
                      "executor 'x' runs remotely: its parameters belong where it runs"));
  BOOST_TEST(contains(config_error("  - {name: x, hosts: [nohost]}\n"), "executor 'x': `hosts` expects HOST:PORT entries (or, for shards, lists of them), found 'nohost'"));
  // A port of 40 digits (std::stol threw out_of_range past the parser; found by fuzz_flow_file).
  BOOST_TEST(contains(config_error("  - {name: x, hosts: [\"b:2222222222222222222222222222222222222265535\"]}\n"),
                      "`hosts` expects HOST:PORT entries (or, for shards, lists of them), found 'b:222"));
  BOOST_TEST(contains(config_error("  - {name: x, host: [a, b], port: [1, 2, 3]}\n"), "executor 'x': 2 hosts but 3 ports"));
  BOOST_TEST(contains(config_error("  - {name: x, external: true}\n"), "executor 'x': an external executor needs `host` and `port`"));
  BOOST_TEST(contains(config_error("  - {name: x, host: a}\n"), "executor 'x': `host` needs a `port`"));
  BOOST_TEST(contains(config_error("  - {name: x, uses: Tagger, external: false, host: a, port: 1}\n"),
                      "executor 'x': `external: false` with an address: docflow runs a non-external executor in this process"));
}

BOOST_AUTO_TEST_SUITE_END()
