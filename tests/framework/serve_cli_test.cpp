// `flow serve`, `flow ping` and `flow post` as a user runs them: a real
// process, a real SIGTERM.
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/run_command.hpp"
#include "docarray/document_file.hpp"
#include "serve_support.hpp"

using namespace docflow::testing;

namespace {
const std::string kFlow = DOCFLOW_FLOW_EXE;
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string write_flow(const TempDir& dir, const std::string& with = "") {
  const std::string path = dir.file("serve.yml");
  std::ofstream(path) << "jtype: Flow\nwith: {name: svc, workspace: " << dir.file("runs") << ", protocol: http, port: 0"
                      << with << ", plugins: [" TEST_PLUGIN_DIR "]}\nexecutors:\n"
                      << "  - {name: tagger, uses: Tagger, with: {key: stage, value: served}}\n"
                      << "  - {name: slow, uses: Misbehaver}\n";
  return path;
}

nlohmann::json status_json(const TempDir& dir, const std::string& name) {
  std::ifstream in(dir.file("runs") + "/" + name + "/status.json");
  return nlohmann::json::parse(in);
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

bool wait_until_gone(long pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::kill(static_cast<pid_t>(pid), 0) != 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Starts `flow serve` detached; returns its status.json once SERVING.
nlohmann::json serve(const TempDir& dir, const std::string& flow, const std::string& name) {
  auto r = run_command(kFlow + " serve " + flow + " --name " + name + " --detach");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "serving " + name + " on http://127.0.0.1:"), r.output);
  nlohmann::json s = status_json(dir, name);
  BOOST_TEST(s["state"] == "SERVING");
  return s;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(serve_cli)

BOOST_AUTO_TEST_CASE(serve_ping_post_and_a_graceful_sigterm_under_load) {
  TempDir dir;
  const std::string flow = write_flow(dir);
  nlohmann::json s = serve(dir, flow, "svc");
  const std::string url = s["address"];
  const long pid = s["pid"];
  BOOST_TEST(run_command(kFlow + " ping " + url).exit_code == 0);
  BOOST_TEST(run_command(kFlow + " status svc --workspace " + dir.file("runs")).output.find("SERVING") != std::string::npos);

  // flow post: a file in, the answers out in order, JSON and msgpack.
  {
    std::ofstream in(dir.file("in.jsonl"));
    for (int i = 0; i < 45; ++i) in << "{\"text\": \"t" << i << "\", \"tags\": {\"i\": " << i << "}}\n";
  }
  for (const std::string binary : {"", " --binary"}) {
    auto r = run_command(kFlow + " post " + url + " /index --data " + dir.file("in.jsonl") + " --request-size 7 -o " +
                         dir.file("out.docs") + binary);
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(contains(r.output, "posted 45 documents in 7 requests"), r.output);
    auto out = docarray::load_documents(dir.file("out.docs"));
    BOOST_REQUIRE_EQUAL(out.size(), 45u);
    for (int i = 0; i < 45; ++i) {
      BOOST_TEST(out[i].find_tag("i")->as_int() == i);
      BOOST_TEST(out[i].find_tag("stage")->as_string() == "served");
    }
  }
  // Its executors bind every endpoint (Jina's @requests without `on`): a made-up one is theirs too.
  auto r = run_command(kFlow + " post " + url + " /made-up --data " + dir.file("in.jsonl") + " -o " + dir.file("any.jsonl"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(docarray::load_documents(dir.file("any.jsonl")).size() == 45u);

  // Load from 8 clients, each request 20 ms in the flow; SIGTERM in the middle.
  const int port = port_of(url);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused_after_stop{0}, unanswered{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&] {
      for (int i = 0; i < 400 && !stop; ++i) {
        const std::string a =
            raw_exchange(port, http_request("POST", "/index", R"({"data": [{"text": "x", "tags": {"sleep_ms": 20}}]})"));
        if (a == kNoConnection) {
          ++refused_after_stop;
          return;
        }
        const int code = status_of(a);
        if (code == 200) ++ok;
        else if (code == 0) ++unanswered;  // accepted, then closed without an answer: a lost request
        else if (code != 503) ++other;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  BOOST_REQUIRE(::kill(static_cast<pid_t>(pid), SIGTERM) == 0);
  BOOST_TEST(wait_until_gone(pid, std::chrono::seconds(20)));
  stop = true;
  for (auto& t : clients) t.join();
  BOOST_TEST(ok.load() > 0);
  BOOST_TEST(unanswered.load() == 0);
  BOOST_TEST(other.load() == 0);
  s = status_json(dir, "svc");
  BOOST_TEST(s["state"] == "STOPPED", s.dump());
  BOOST_TEST(s["details"] == "stopped on request", s.dump());
  r = run_command(kFlow + " logs svc --workspace " + dir.file("runs"));
  BOOST_TEST(contains(r.output, "stopping: answering the requests in flight"), r.output);
  BOOST_TEST(run_command(kFlow + " ping " + url + " --timeout-ms 500").exit_code == 1);
}

BOOST_AUTO_TEST_CASE(a_restarted_service_finds_its_run_folder_and_a_running_one_is_not_doubled) {
  TempDir dir;
  const std::string flow = write_flow(dir);
  nlohmann::json first = serve(dir, flow, "again");
  std::ofstream(dir.file("runs") + "/again/executors/tagger/kept.txt") << "data of the first run";
  auto r = run_command(kFlow + " serve " + flow + " --name again --detach");
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(contains(r.output, "is still SERVING"), r.output);
  ::kill(static_cast<pid_t>(first["pid"].get<long>()), SIGTERM);
  BOOST_TEST(wait_until_gone(first["pid"].get<long>(), std::chrono::seconds(20)));
  nlohmann::json second = serve(dir, flow, "again");
  BOOST_TEST(std::filesystem::exists(dir.file("runs") + "/again/executors/tagger/kept.txt"));
  BOOST_TEST(run_command(kFlow + " runs --workspace " + dir.file("runs")).output.find("again") != std::string::npos);
  ::kill(static_cast<pid_t>(second["pid"].get<long>()), SIGTERM);
  BOOST_TEST(wait_until_gone(second["pid"].get<long>(), std::chrono::seconds(20)));
}

BOOST_AUTO_TEST_CASE(jina_serving_keys_are_honoured_or_refused) {
  TempDir dir;
  auto validate = [&](const std::string& with) {
    const std::string flow = write_flow(dir, with);
    return run_command(kFlow + " validate " + flow);
  };
  auto r = validate(", cors: true, timeout_send: 5000, timeout_ready: -1, monitoring: true, port_monitoring: 0");
  BOOST_TEST(r.exit_code == 0, r.output);
  r = validate(", protocol: [http, grpc]");  // the flow file already says protocol: http once
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(contains(r.output, "given twice"), r.output);
  const std::string grpc = dir.file("grpc.yml");
  std::ofstream(grpc) << "jtype: Flow\nwith: {protocol: grpc, port_expose: 5000, port: 5001}\nexecutors:\n  - name: a\n";
  r = run_command(kFlow + " validate " + grpc);
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "docflow serves Jina's HTTP API only (protocol: http); found protocol: grpc"), r.output);
  BOOST_TEST(contains(r.output, "'port_expose' is the older name of 'port'"), r.output);
  r = validate(", timeout_send: 0");
  BOOST_TEST(contains(r.output, "'timeout_send' is in milliseconds"), r.output);
  r = validate(", cors: maybe");
  BOOST_TEST(contains(r.output, "'cors' expects true or false"), r.output);
  // A free port the service could not bind is an error naming it.
  const std::string flow = write_flow(dir);
  ServedFlow busy("  - {name: a, uses: Tagger}\n");
  r = run_command(kFlow + " serve " + flow + " --name busy --port " + std::to_string(busy.port()));
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(contains(r.output, "cannot listen on 127.0.0.1:" + std::to_string(busy.port())), r.output);
}

BOOST_AUTO_TEST_SUITE_END()
