// Executors in processes of their own (`isolate: true`, `flow serve
// --isolate`): a plugin that segfaults fails the request it held with an
// error naming the executor and the signal, is started again while the flow
// keeps serving, and after `restarts` restarts stays down, saying so. No
// child outlives its flow, not even a flow killed with -9.
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/detached_service.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/client.hpp"
#include "docflow/error.hpp"
#include "docflow/flow.hpp"
#include "docflow/isolation.hpp"

using namespace docflow;
using docflow::testing::TempDir;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Flow flow_of(const std::string& executors) {
  return Flow::from_config(parse_flow_text("jtype: Flow\nwith: {name: f, plugins: [" TEST_PLUGIN_DIR "]}\nexecutors:\n" + executors));
}

docarray::DocumentArray one(bool crash) {
  docarray::DocumentArray docs;
  docarray::Document d("d");
  if (crash) d.tags["crash"] = true;
  docs.append(std::move(d));
  return docs;
}

// The child's pid, from the run folder of the `flow serve` it is.
long child_pid(const std::filesystem::path& process_dir) {
  std::ifstream in(process_dir / "runs/process/status.json");
  return nlohmann::json::parse(in).at("pid").get<long>();
}

bool gone(long pid) {
  for (int i = 0; i < 100; ++i) {
    if (::kill(static_cast<pid_t>(pid), 0) != 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The plugin's deliberate SIGSEGV must kill its process as it does in any
// build: under AddressSanitizer (scripts/sanitize.sh) the child inherits
// ASan's SEGV handler, which reports and exits with code 1 instead. For the
// tests of this suite only, children leave the signal alone.
struct DeliberateCrashesDie {
  std::string before;
  bool had = false;
  DeliberateCrashesDie() {
    if (const char* v = std::getenv("ASAN_OPTIONS")) {
      before = v;
      had = true;
    }
    ::setenv("ASAN_OPTIONS", (before + (before.empty() ? "" : ":") + "handle_segv=0").c_str(), 1);
  }
  ~DeliberateCrashesDie() {
    if (had) ::setenv("ASAN_OPTIONS", before.c_str(), 1);
    else ::unsetenv("ASAN_OPTIONS");
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(isolation, DeliberateCrashesDie)

BOOST_AUTO_TEST_CASE(a_segfaulting_executor_fails_its_request_is_started_again_and_stays_down_after_its_restarts) {
  docflow::set_flow_executable(DOCFLOW_FLOW_EXE);
  TempDir dir;
  // timeout_ready and timeout_send of -1: no limit, as for a remote executor.
  Flow f = flow_of("  - {name: shaky, uses: Misbehaver, isolate: true, restarts: 2, timeout_ready: -1, timeout_send: -1}\n"
                   "  - {name: tag, uses: Tagger, with: {key: after, value: shaky}}\n");
  f.isolate_failures(true);
  f.open(dir.path() / "ws");
  const auto process = dir.path() / "ws/shaky/process";
  auto post = [&](bool crash) -> std::string {
    try {
      docarray::DocumentArray out = f.post("/index", one(crash));
      BOOST_REQUIRE_EQUAL(out.size(), 1u);
      BOOST_TEST(out[0].find_tag("misbehaver_saw") != nullptr);  // it ran there,
      BOOST_TEST(out[0].find_tag("after")->as_string() == "shaky");  // and the flow went on here
      return "";
    } catch (const ExecutorError& e) {
      return e.what();
    }
  };
  BOOST_TEST(post(false) == "");
  std::vector<long> pids = {child_pid(process)};
  BOOST_TEST(pids[0] != static_cast<long>(::getpid()));

  for (int restart = 1; restart <= 2; ++restart) {
    const std::string e = post(true);
    BOOST_TEST(contains(e, "executor 'shaky'"), e);
    BOOST_TEST(contains(e, "crashed while it held this request: its process (pid " + std::to_string(pids.back()) +
                               ") was killed by signal 11 (Segmentation fault)"),
               e);
    BOOST_TEST(contains(e, "it is being started again"), e);
    BOOST_TEST(post(false) == "");  // waits for the new process, then runs there
    pids.push_back(child_pid(process));
    BOOST_TEST(pids.back() != pids[pids.size() - 2]);
  }
  std::string e = post(true);  // the third crash: no restart left
  BOOST_TEST(contains(e, "was killed by signal 11 (Segmentation fault)"), e);
  BOOST_TEST(contains(e, "it is not started again (restarts: 2)"), e);
  e = post(false);
  BOOST_TEST(contains(e, "executor 'shaky'"), e);
  BOOST_TEST(contains(e, "crashed 3 times and is not started again (restarts: 2)"), e);
  f.close();
  for (long pid : pids) BOOST_TEST(gone(pid), "pid " << pid);
}

BOOST_AUTO_TEST_CASE(flow_serve_isolate_keeps_serving_through_a_crash_and_leaves_no_child_behind) {
  TempDir dir;
  std::ofstream(dir.file("shaky.yml")) << "jtype: Flow\nwith: {name: shaky, plugins: [" TEST_PLUGIN_DIR "]}\n"
                                          "executors:\n  - {name: shaky, uses: Misbehaver}\n";
  const std::string serve = "cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " serve shaky.yml --isolate --port 0";
  const auto process = dir.path() / "runs/shaky/executors/shaky/process";
  {
    docflow::testing::DetachedService server(serve + " --detach", dir.file("runs/shaky/status.json"));
    docflow::Client client(server.url());
    BOOST_TEST(client.post("/index", one(false))[0].find_tag("misbehaver_saw") != nullptr);
    const long first = child_pid(process);
    std::string e;
    try {
      client.post("/index", one(true));
    } catch (const ClientError& x) {
      e = x.what();
    }
    BOOST_TEST(contains(e, "shaky"), e);
    BOOST_TEST(contains(e, "was killed by signal 11 (Segmentation fault)"), e);
    BOOST_TEST(client.post("/index", one(false))[0].find_tag("misbehaver_saw") != nullptr);  // still serving
    const long second = child_pid(process);
    BOOST_TEST(second != first);
    server.stop(SIGTERM);  // the flow closes its executors: the child goes with it
    BOOST_TEST(gone(second));
  }
  // kill -9 of the flow: the child dies with its parent (PR_SET_PDEATHSIG).
  docflow::testing::DetachedService server(serve + " --detach --name again", dir.file("runs/again/status.json"));
  const long child = child_pid(dir.path() / "runs/again/executors/shaky/process");
  server.stop(SIGKILL);
  BOOST_TEST(gone(child));
}

BOOST_AUTO_TEST_CASE(isolating_what_cannot_be_isolated_is_refused) {
  auto error = [](const std::string& executors) -> std::string {
    try {
      flow_of(executors);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "<no error>";
  };
  BOOST_TEST(contains(error("  - {name: far, hosts: [127.0.0.1:9], isolate: true}\n"),
                      "executor 'far' is remote: it already runs in a process of its own; drop `isolate`"));
  BOOST_TEST(contains(error("  - {name: reader, uses: Counter, isolate: true}\n"),
                      "executor 'reader' is a source: it runs in the flow's own process; drop `isolate`"));
  BOOST_TEST(contains(error("  - {name: x, uses: Tagger, restarts: -1}\n"), "restarts"));
}

BOOST_AUTO_TEST_SUITE_END()
