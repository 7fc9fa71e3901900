// `flow run | status | logs | runs | validate | plot | plugins` as a user runs them.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docarray/document_file.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;

namespace {
const std::string kFlow = DOCFLOW_FLOW_EXE;
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A flow file in `dir` that counts, optionally fails, and writes documents.
std::string write_flow(const TempDir& dir, const std::string& middle) {
  std::string path = dir.file("flow.yml");
  std::ofstream(path) << "jtype: Flow\nwith:\n  name: cli\n  workspace: " << dir.file("runs")
                      << "\n  plugins: [" TEST_PLUGIN_DIR "]\nexecutors:\n"
                      << "  - {name: source, uses: Counter, with: {n: 25, batch_size: 5}}\n"
                      << middle << "  - {name: writer, uses: DocumentWriter, with: {path: " << dir.file("out.jsonl")
                      << "}}\n";
  return path;
}

std::string in(const TempDir& dir, const std::string& command) {
  return "cd " + dir.path().string() + " && " + kFlow + " " + command;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(run_writes_a_run_folder_and_status_logs_runs_find_it) {
  TempDir dir;
  std::string flow = write_flow(dir, "  - {name: tag, uses: Tagger, with: {key: stage, value: one}}\n");
  auto r = run_command(in(dir, "run " + flow + " --name first --set tag.value=two"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "INFO [flow] finished: 5 requests, 25 documents, 1 epoch(s)"), r.output);

  auto docs = docarray::load_documents(dir.file("out.jsonl"));
  BOOST_TEST(docs.size() == 25u);
  BOOST_TEST(docs[24].find_tag("stage")->as_string() == "two");  // --set applied

  const std::string runs = dir.file("runs");
  BOOST_TEST(std::filesystem::exists(runs + "/first/flow.yml"));
  BOOST_TEST(std::filesystem::exists(runs + "/first/executors/tag"));
  std::ifstream resolved(runs + "/first/flow.yml");
  std::string text((std::istreambuf_iterator<char>(resolved)), {});
  BOOST_TEST(contains(text, "value: \"two\""), text);

  r = run_command(in(dir, "status first --workspace " + runs));
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.output, "state:    FINISHED"), r.output);
  r = run_command(in(dir, "logs first --workspace " + runs));
  BOOST_TEST(contains(r.output, "INFO [writer] wrote 25 documents"), r.output);
  r = run_command(in(dir, "runs --workspace " + runs));
  BOOST_TEST(contains(r.output, "first"), r.output);
  BOOST_TEST(contains(r.output, "FINISHED"), r.output);

  r = run_command(in(dir, "run " + flow + " --name first"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "a run named 'first' already exists"), r.output);
  r = run_command(in(dir, "status nosuchrun --workspace " + runs));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "no run named 'nosuchrun'"), r.output);
}

BOOST_AUTO_TEST_CASE(a_failing_run_exits_1_and_is_marked_failed) {
  TempDir dir;
  std::string flow = write_flow(dir, "  - {name: fail, uses: Failer, with: {after: 2, message: corrupt image}}\n");
  auto r = run_command(in(dir, "run " + flow + " --name broken"));
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(contains(r.output, "run failed: executor 'fail' on /index: corrupt image"), r.output);
  r = run_command(in(dir, "status broken --workspace " + dir.file("runs")));
  BOOST_TEST(contains(r.output, "state:    FAILED"), r.output);
  BOOST_TEST(contains(r.output, "details:  executor 'fail' on /index: corrupt image"), r.output);
  // close() ran: the failing executor wrote its marker.
  BOOST_TEST(std::filesystem::exists(dir.file("runs") + "/broken/executors/fail/closed"));
}

BOOST_AUTO_TEST_CASE(detach_returns_at_once_and_the_run_finishes) {
  TempDir dir;
  std::string flow = write_flow(dir, "  - {name: slow, uses: Sleeper, with: {max_ms: 20}}\n");
  auto r = run_command(in(dir, "run " + flow + " --name bg --detach"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "run bg started in the background"), r.output);
  std::string state;
  for (int i = 0; i < 300 && state != "FINISHED" && state != "FAILED"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto s = run_command(in(dir, "status bg --workspace " + dir.file("runs")));
    auto pos = s.output.find("state:    ");
    state = pos == std::string::npos ? "" : s.output.substr(pos + 10, s.output.find('\n', pos) - pos - 10);
  }
  BOOST_TEST(state == "FINISHED");
  auto logs = run_command(in(dir, "logs bg --follow --workspace " + dir.file("runs")));
  BOOST_TEST(contains(logs.output, "finished: 5 requests"), logs.output);
}

BOOST_AUTO_TEST_CASE(ctrl_c_stops_the_run_cleanly) {
  TempDir dir;
  std::string path = dir.file("slow.yml");
  std::ofstream(path) << "jtype: Flow\nwith: {workspace: " << dir.file("runs") << ", plugins: [" TEST_PLUGIN_DIR "]}\n"
                      << "executors:\n  - {name: source, uses: Counter, with: {n: 2000}}\n"
                      << "  - {name: slow, uses: Sleeper, with: {max_ms: 10}}\n"
                      << "  - {name: fail, uses: Failer, with: {after: -1}}\n";
  // SIGINT once the run is STARTED (its handler is in place by then; a slow
  // start, under a sanitizer say, must not let the signal arrive first).
  const std::string status = dir.file("runs") + "/stopped/status.json";
  auto r = run_command("(" + in(dir, "run " + path + " --name stopped 2>&1 & pid=$!; for i in $(seq 300); do grep -q STARTED " +
                                         status + " 2>/dev/null && break; sleep 0.1; done; sleep 0.5; kill -INT $pid; wait $pid") +
                       ")");
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(contains(r.output, "run failed: the run was interrupted"), r.output);
  r = run_command(in(dir, "status stopped --workspace " + dir.file("runs")));
  BOOST_TEST(contains(r.output, "state:    FAILED"), r.output);
  BOOST_TEST(std::filesystem::exists(dir.file("runs") + "/stopped/executors/fail/closed"));
}

BOOST_AUTO_TEST_CASE(validate_plot_and_plugins) {
  TempDir dir;
  std::string flow = write_flow(dir, "  - {name: tag, uses: Tagger}\n");
  auto r = run_command(in(dir, "validate " + flow));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "valid, 3 executors in topological order: source tag writer"), r.output);
  r = run_command(in(dir, "validate " + std::string(TEST_FLOWS_DIR) + "/bad/cycle.yml"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "cycle.yml:6:12: the flow has a cycle: a -> b -> c -> a"), r.output);

  r = run_command(in(dir, "plot " + flow + " -o graph.dot"));
  BOOST_TEST(r.exit_code == 0, r.output);
  std::ifstream dot(dir.file("graph.dot"));
  std::string text((std::istreambuf_iterator<char>(dot)), {});
  BOOST_TEST(contains(text, "\"source\" -> \"tag\";"), text);
  BOOST_TEST(contains(text, "\"tag\" -> \"writer\";"), text);

  r = run_command(in(dir, "plugins --plugin-path " TEST_PLUGIN_DIR));
  BOOST_TEST(contains(r.output, "io          DocumentReader"), r.output);
  BOOST_TEST(contains(r.output, "testing     Counter"), r.output);
  r = run_command(in(dir, "plugins describe DocumentWriter"));
  BOOST_TEST(contains(r.output, "compress          string  = \"none\""), r.output);
  BOOST_TEST(contains(r.output, "none|zstd"), r.output);
  r = run_command(in(dir, "plugins describe DocumentReader"));
  BOOST_TEST(contains(r.output, "passes over the data >= 1\n"), r.output);  // whole bounds print as integers
  r = run_command(in(dir, "plugins describe NoSuchThing"));
  BOOST_TEST(r.exit_code == 2);
  r = run_command(in(dir, "frobnicate"));
  BOOST_TEST(r.exit_code == 2);
  r = run_command(in(dir, "--version"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.rfind("docflow ", 0) == 0, r.output);
  // Every command of the usage, those `flow` runs itself and those of the
  // command library it loads (framework/cli/main.cpp).
  for (const char* cmd : {"run", "serve", "executor", "export", "ping", "post", "status", "logs", "runs", "artifact",
                          "validate", "plot", "plugins", "docs", "limits", "info"}) {
    r = run_command(in(dir, std::string(cmd) + " --help"));
    BOOST_TEST_CONTEXT(cmd) BOOST_TEST(r.exit_code == 0, r.output);
  }
}

// The commands that only read a run folder or ask a served flow for its
// health start without LibTorch (framework/cli/main.cpp): `flow ping` is
// every Kubernetes pod's probe, run every few seconds. Under LD_DEBUG=files
// the dynamic loader names every library it loads.
BOOST_AUTO_TEST_CASE(commands_that_need_no_tensors_load_no_libtorch) {
  TempDir dir;
  std::string flow = write_flow(dir, "");
  auto r = run_command(in(dir, "run " + flow + " --name done"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string runs = " --workspace " + dir.file("runs");
  for (const std::string& cmd : std::vector<std::string>{"status done" + runs, "runs" + runs, "logs done" + runs, "limits --input-limit depth=5",
                                "ping http://127.0.0.1:1 --timeout-ms 200", "status nothing" + runs, "--help", "--version", "frobnicate"}) {
    r = run_command("cd " + dir.path().string() + " && LD_DEBUG=files " + kFlow + " " + cmd);
    BOOST_TEST_CONTEXT(cmd) {
      BOOST_TEST(contains(r.output, "libdocflow_base.so"), r.output.substr(0, 2000));  // the loader did report
      BOOST_TEST(!contains(r.output, "libtorch_cpu.so"), r.output.substr(0, 2000));
    }
  }
  // And what they print, as before the split.
  r = run_command(in(dir, "status done" + runs));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "state:    FINISHED"), r.output);
  r = run_command(in(dir, "limits --input-limit depth=5"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "  depth=5  "), r.output);
  r = run_command(in(dir, "limits --input-limit no_such_limit=5"));
  BOOST_TEST(r.exit_code == 2, r.output);
  r = run_command(in(dir, "ping http://127.0.0.1:1 --timeout-ms 200"));
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(contains(r.output, "flow ping: cannot connect to http://127.0.0.1:1"), r.output);
  // A command of the library loads it, and LibTorch with it.
  r = run_command("cd " + dir.path().string() + " && LD_DEBUG=files " + kFlow + " validate " + flow);
  BOOST_TEST(r.exit_code == 0, r.output.substr(r.output.size() > 2000 ? r.output.size() - 2000 : 0));
  BOOST_TEST(contains(r.output, "libtorch_cpu.so"));
}

BOOST_AUTO_TEST_SUITE_END()
