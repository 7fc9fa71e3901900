// The gateway as clients see it: real servers on ephemeral loopback ports,
// real sockets, docflow::Client and raw bytes.
#include <boost/test/unit_test.hpp>

#include <ATen/ATen.h>

#include <atomic>
#include <thread>

#include "docarray/envelope.hpp"
#include "docarray/jsonl_io.hpp"
#include "docflow/client.hpp"
#include "serve_support.hpp"

using namespace docflow;
using namespace docflow::testing;
using docarray::Document;
using docarray::DocumentArray;
using docarray::Value;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::string kTwoStep =
    "  - {name: tagger, uses: Tagger, with: {key: stage, value: tagged}}\n"
    "  - {name: custom, uses: Tagger, with: {key: custom, value: 1, endpoint: /custom}}\n"
    "  - {name: misbehaver, uses: Misbehaver}\n";

std::string post_json(int port, const std::string& target, const std::string& body, const std::string& headers = "") {
  return raw_exchange(port, http_request("POST", target, body, "application/json", headers));
}

DocumentArray texts(int n, const std::string& prefix = "doc") {
  DocumentArray docs;
  for (int i = 0; i < n; ++i) {
    Document d;
    d.text = prefix + std::to_string(i);
    d.tags["i"] = i;
    docs.append(std::move(d));
  }
  return docs;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(serve)

BOOST_AUTO_TEST_CASE(health_status_and_dry_run) {
  ServedFlow served(kTwoStep);
  auto r = raw_exchange(served.port(), http_request("GET", "/", ""));
  BOOST_TEST(status_of(r) == 200, r);
  BOOST_TEST(body_of(r) == "{}");
  r = raw_exchange(served.port(), http_request("GET", "/status", ""));
  BOOST_TEST(status_of(r) == 200, r);
  BOOST_TEST(contains(r, "\"flow\":\"served\""), r);
  BOOST_TEST(contains(r, "{\"name\":\"custom\",\"uses\":\"Tagger\",\"replicas\":1,\"endpoints\":[\"/custom\"]}"), r);
  BOOST_TEST(contains(r, "\"endpoints\":[\"/custom\",\"/delete\",\"/index\",\"/search\",\"/update\"]"), r);
  r = raw_exchange(served.port(), http_request("GET", "/dry_run", ""));
  BOOST_TEST(status_of(r) == 200, r);
  BOOST_TEST(body_of(r) == R"({"code":0,"description":"","exception":null})");
}

BOOST_AUTO_TEST_CASE(post_and_endpoint_routes_answer_with_jinas_shape) {
  ServedFlow served(kTwoStep);
  auto r = post_json(served.port(), "/post",
                     R"({"data": [{"text": "a"}], "exec_endpoint": "/custom", "parameters": {"limit": 2}})");
  BOOST_TEST(status_of(r) == 200, r);
  docarray::Envelope env = docarray::parse_json_envelope(body_of(r));
  const Value* header = env.fields.find("header");
  BOOST_REQUIRE(header);
  BOOST_TEST(header->find("status")->find("code")->as_int() == 0);
  BOOST_TEST(header->find("execEndpoint")->as_string() == "/custom");
  BOOST_TEST(header->find("requestId")->as_string().size() == 32u);
  BOOST_TEST(env.fields.find("parameters")->find("limit")->as_int() == 2);
  BOOST_REQUIRE_EQUAL(env.docs.size(), 1u);
  BOOST_TEST(env.docs[0].find_tag("custom")->as_int() == 1);  // the executor bound to /custom ran
  BOOST_TEST(env.docs[0].find_tag("stage")->as_string() == "tagged");

  // Each route with its method; DocArray's {"docs": [...]} form too.
  r = post_json(served.port(), "/search", R"({"data": {"docs": [{"text": "b"}, {"text": "c"}]}})");
  BOOST_TEST(status_of(r) == 200, r);
  env = docarray::parse_json_envelope(body_of(r));
  BOOST_TEST(env.docs.size() == 2u);
  BOOST_TEST(!env.docs[0].find_tag("custom"));  // /custom's executor passes /search through
  r = raw_exchange(served.port(), http_request("PUT", "/update", R"({"data": [{"text": "u"}]})"));
  BOOST_TEST(status_of(r) == 200, r);
  r = raw_exchange(served.port(), http_request("DELETE", "/delete", R"({"data": []})"));
  BOOST_TEST(status_of(r) == 200, r);
  r = raw_exchange(served.port(), http_request("GET", "/index", ""));
  BOOST_TEST(status_of(r) == 405, r);
  BOOST_TEST(contains(r, "Allow: POST"), r);
}

BOOST_AUTO_TEST_CASE(target_executor_sends_the_request_to_the_matching_executors_only) {
  ServedFlow served(kTwoStep);
  auto r = post_json(served.port(), "/index", R"({"data": [{"text": "a"}], "target_executor": "misb"})");
  BOOST_TEST(status_of(r) == 200, r);
  auto env = docarray::parse_json_envelope(body_of(r));
  BOOST_TEST(!env.docs[0].find_tag("stage"));  // tagger passed it through
  BOOST_TEST(env.docs[0].find_tag("misbehaver_saw")->as_bool());
  r = post_json(served.port(), "/index", R"({"data": [], "target_executor": "nobody"})");
  BOOST_TEST(status_of(r) == 400, r);
  BOOST_TEST(contains(r, "matches no executor (executors: tagger, custom, misbehaver)"), r);
  r = post_json(served.port(), "/index", R"({"data": [], "target_executor": "(("})");
  BOOST_TEST(status_of(r) == 400, r);
  BOOST_TEST(contains(r, "not a valid regex"), r);
}

BOOST_AUTO_TEST_CASE(every_client_error_says_what_and_where) {
  GatewayOptions o;
  o.max_body_bytes = 4096;
  o.max_docs = 3;
  ServedFlow served(kTwoStep, o);
  const int port = served.port();
  struct Case {
    std::string raw;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {http_request("POST", "/index", R"({"data": [{"text": "a"},)"), 400, "invalid JSON at byte 25"},
      {http_request("POST", "/index", R"({"data": [{"text": "a"}, {"embedding": 3}]})"), 400, "data[1]: field 'embedding'"},
      {http_request("POST", "/index", R"({"data": [], "limit": 3})"), 400, "unknown field 'limit'"},
      {http_request("POST", "/index", R"({"parameters": [1]})"), 400, "'parameters' expects an object"},
      {http_request("POST", "/post", R"({"data": []})"), 400, "'exec_endpoint' is required"},
      {http_request("POST", "/post", R"({"exec_endpoint": "/_event", "parameters": {"kind": "later"}})"), 400,
       "/_event expects parameters {"},
      {http_request("POST", "/nope", "{}"), 404, "the flow serves /custom, /delete, /index, /search, /update"},
      {http_request("POST", "/index", "a=b", "application/x-www-form-urlencoded"), 415, "application/x-www-form-urlencoded"},
      {http_request("POST", "/index", std::string(5000, ' ')), 413, "larger than the limit of 4096 bytes"},
      {http_request("POST", "/index", R"({"data": [{}, {}, {}, {}]})"), 413, "4 documents, over the limit of 3"},
      {http_request("POST", "/index", "{\"data\": [{\"text\": \"\xff\xfe\"}]}"), 400, "invalid JSON"},
      {http_request("POST", "/index", "{\"parameters\": " + std::string(3000, '[') + "}"), 400, "nested deeper"},
      {http_request("POST", "/index", std::string("\x81\xa4" "data" "\xdd\xff\xff\xff\xff", 11), "application/x-msgpack"), 400,
       "the request body"},
  };
  for (const auto& c : cases) {
    const std::string r = raw_exchange(port, c.raw);
    BOOST_TEST(status_of(r) == c.status, c.raw.substr(0, 80) << " -> " << r);
    BOOST_TEST(contains(r, c.says), c.raw.substr(0, 80) << " -> " << r);
    BOOST_TEST(contains(r, "Content-Type: application/json"), r);
  }
  // An executor bound to every endpoint (Jina's @requests without `on`)
  // takes any exec_endpoint; with only named endpoints, others are refused.
  BOOST_TEST(status_of(raw_exchange(port, http_request("POST", "/post", R"({"exec_endpoint": "/nope"})"))) == 200);
  ServedFlow named("  - {name: custom, uses: Tagger, with: {key: custom, value: 1, endpoint: /custom}}\n");
  const std::string r = raw_exchange(named.port(), http_request("POST", "/post", R"({"exec_endpoint": "/nope"})"));
  BOOST_TEST(status_of(r) == 404, r);
  BOOST_TEST(contains(r, "exec_endpoint /nope is not an endpoint of the flow (endpoints: /custom, /delete, /index, /search, /update)"), r);
  BOOST_TEST(status_of(raw_exchange(port, http_request("GET", "/", ""))) == 200);
}

BOOST_AUTO_TEST_CASE(an_executor_failure_answers_500_naming_it_and_the_service_goes_on) {
  ServedFlow served(kTwoStep);
  auto r = post_json(served.port(), "/index", R"({"data": [{"text": "bad one", "tags": {"fail": true}}]})");
  BOOST_TEST(status_of(r) == 500, r);
  auto env = docarray::parse_json_envelope(body_of(r));
  const Value& status = *env.fields.find("header")->find("status");
  BOOST_TEST(status.find("code")->as_int() == 1);
  BOOST_TEST(status.find("exception")->find("executor")->as_string() == "misbehaver");
  BOOST_TEST(contains(status.find("description")->as_string(), "document 'bad one' asked to fail"), r);
  // The next request, and a dry run, work.
  r = post_json(served.port(), "/index", R"({"data": [{"text": "good"}]})");
  BOOST_TEST(status_of(r) == 200, r);
  BOOST_TEST(status_of(raw_exchange(served.port(), http_request("GET", "/dry_run", ""))) == 200);
}

BOOST_AUTO_TEST_CASE(timeout_send_answers_504_and_the_flow_keeps_serving) {
  ServedFlow served(kTwoStep, GatewayOptions::from([] {
                      ServeConfig s;
                      s.timeout_send_ms = 200;
                      return s;
                    }()));
  auto r = post_json(served.port(), "/index", R"({"data": [{"text": "slow", "tags": {"sleep_ms": 1500}}]})");
  BOOST_TEST(status_of(r) == 504, r);
  BOOST_TEST(contains(r, "timeout_send (200 ms)"), r);
  // The executor cannot be interrupted: the slow request still finishes
  // inside the flow (its answer is dropped), then the next one is served.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  r = post_json(served.port(), "/index", R"({"data": [{"text": "quick"}]})");
  BOOST_TEST(status_of(r) == 200, r);
}

// A request's timeout and a queued request's start stay on the network
// thread of the request's connection. Two clients (two connections, one
// per network thread) with one request in the flow at a time, so that most
// wait in the queue and are started by another's answer: every request gets
// its own answer, none a stray 504 (each timer is cancelled where it was
// armed, or posted there). Then two slow requests at once (one on each
// thread) both get their 504, and the flow serves on.
BOOST_AUTO_TEST_CASE(timeouts_and_queued_requests_on_every_network_thread) {
  GatewayOptions o = GatewayOptions::from([] {
    ServeConfig s;
    s.timeout_send_ms = 1200;
    return s;
  }());
  o.io_threads = 2;
  ServedFlow served("  - {name: misbehaver, uses: Misbehaver}\n", o, "prefetch: 1");
  Client a(served.url()), b(served.url());
  const DocumentArray sent_a = texts(40, "a"), sent_b = texts(40, "b");
  DocumentArray back_a, back_b;
  std::thread on_a([&] { back_a = a.post("/index", sent_a, Value(), 1); });
  back_b = b.post("/index", sent_b, Value(), 1);
  on_a.join();
  BOOST_REQUIRE_EQUAL(back_a.size(), sent_a.size());
  BOOST_REQUIRE_EQUAL(back_b.size(), sent_b.size());
  for (std::size_t i = 0; i < sent_a.size(); ++i) {
    BOOST_TEST(back_a[i].id == sent_a[i].id);
    BOOST_TEST(back_b[i].id == sent_b[i].id);
  }
  std::string slow[2];
  std::thread first([&] { slow[0] = post_json(served.port(), "/index", R"({"data": [{"tags": {"sleep_ms": 1800}}]})"); });
  slow[1] = post_json(served.port(), "/index", R"({"data": [{"tags": {"sleep_ms": 1800}}]})");
  first.join();
  for (const auto& r : slow) {
    BOOST_TEST(status_of(r) == 504, r);
    BOOST_TEST(contains(r, "timeout_send (1200 ms)"), r);
  }
  // Both slow requests still run in the flow, one after the other.
  std::this_thread::sleep_for(std::chrono::milliseconds(2600));
  BOOST_TEST(status_of(post_json(served.port(), "/index", R"({"data": [{"text": "quick"}]})")) == 200);
}

BOOST_AUTO_TEST_CASE(a_token_guards_every_route_but_health) {
  GatewayOptions o;
  o.token = "s3cret";
  ServedFlow served(kTwoStep, o);
  BOOST_TEST(status_of(raw_exchange(served.port(), http_request("GET", "/", ""))) == 200);
  auto r = post_json(served.port(), "/index", "{}");
  BOOST_TEST(status_of(r) == 401, r);
  BOOST_TEST(contains(r, "WWW-Authenticate: Bearer"), r);
  BOOST_TEST(status_of(post_json(served.port(), "/index", "{}", "Authorization: Bearer wrong\r\n")) == 401);
  BOOST_TEST(status_of(post_json(served.port(), "/index", "{}", "Authorization: Bearer s3cret\r\n")) == 200);
  ClientOptions co;
  co.token = "s3cret";
  Client client(served.url(), co);
  BOOST_TEST(client.post("/index", texts(3)).size() == 3u);
}

BOOST_AUTO_TEST_CASE(cors_is_off_unless_asked_for) {
  {
    ServedFlow served(kTwoStep);
    auto r = raw_exchange(served.port(), http_request("OPTIONS", "/index", ""));
    BOOST_TEST(status_of(r) == 405, r);
    BOOST_TEST(!contains(post_json(served.port(), "/index", "{}"), "Access-Control-Allow-Origin"));
  }
  GatewayOptions o;
  o.cors = true;
  ServedFlow served(kTwoStep, o);
  auto r = raw_exchange(served.port(), http_request("OPTIONS", "/index", "", "", "Origin: http://x\r\n"));
  BOOST_TEST(status_of(r) == 204, r);
  BOOST_TEST(contains(r, "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS"), r);
  BOOST_TEST(contains(post_json(served.port(), "/index", "{}"), "Access-Control-Allow-Origin: *"));
}

BOOST_AUTO_TEST_CASE(json_and_msgpack_round_trip_embeddings_through_the_client) {
  ServedFlow served(kTwoStep);
  DocumentArray docs = texts(10);
  for (auto& d : docs) d.embedding = at::randn({512});
  for (bool binary : {false, true}) {
    ClientOptions co;
    co.binary = binary;
    Client client(served.url(), co);
    DocumentArray back = client.post("/index", docs, Value(), 3);
    BOOST_REQUIRE_EQUAL(back.size(), docs.size());
    for (std::size_t i = 0; i < docs.size(); ++i) {
      BOOST_TEST(back[i].id == docs[i].id);
      BOOST_TEST(at::equal(back[i].embedding, docs[i].embedding), "binary=" << binary << " doc " << i);
      BOOST_TEST(back[i].find_tag("stage")->as_string() == "tagged");
    }
  }
  // A raw msgpack request answers msgpack when asked to.
  Value fields = Value::map();
  fields["parameters"]["k"] = 1;
  const std::string body = docarray::to_msgpack_envelope(fields, texts(2));
  auto r = raw_exchange(served.port(), http_request("POST", "/index", body, "application/x-msgpack", "Accept: application/x-msgpack\r\n"));
  BOOST_TEST(status_of(r) == 200);
  BOOST_TEST(contains(r, "Content-Type: application/x-msgpack"), r.substr(0, 300));
  auto env = docarray::parse_msgpack_envelope(body_of(r));
  BOOST_TEST(env.docs.size() == 2u);
  BOOST_TEST(env.fields.find("parameters")->find("k")->as_int() == 1);
}

BOOST_AUTO_TEST_CASE(many_connections_lose_duplicate_or_reorder_nothing) {
  // 64 connections x 200 one-document requests, 4 in flight on each
  // connection, through an executor that sleeps at random (so answers
  // finish out of order inside the flow).
  ServedFlow served("  - {name: sleeper, uses: Sleeper, with: {max_ms: 1}, replicas: 2}\n"
                    "  - {name: tagger, uses: Tagger, with: {key: stage, value: tagged}}\n");
  constexpr int kConnections = 64, kRequests = 200;
  std::atomic<int> wrong{0}, answered{0};
  std::vector<std::string> failures(kConnections);
  std::vector<std::thread> threads;
  for (int c = 0; c < kConnections; ++c) {
    threads.emplace_back([&, c] {
      try {
        Client client(served.url());
        DocumentArray docs = texts(kRequests, "c" + std::to_string(c) + "-");
        std::size_t expected = 0;
        client.post(
            "/index",
            [&, i = std::size_t(0)](DocumentArray& batch) mutable {
              if (i == docs.size()) return false;
              batch.append(docs[i++]);
              return true;
            },
            Value(), [&](ClientResponse& r) {
              if (r.docs.size() != 1 || r.batch != expected || r.docs[0].text != docs[expected].text ||
                  !r.docs[0].find_tag("stage"))
                ++wrong;
              ++expected;
              ++answered;
            });
        if (expected != docs.size()) ++wrong;
      } catch (const std::exception& e) {
        failures[c] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) BOOST_TEST(f.empty(), f);
  BOOST_TEST(wrong.load() == 0);
  BOOST_TEST(answered.load() == kConnections * kRequests);
}

BOOST_AUTO_TEST_CASE(malformed_requests_never_take_the_server_down) {
  GatewayOptions o;
  o.max_header_bytes = 2048;
  o.read_timeout_ms = 500;
  ServedFlow served(kTwoStep, o);
  const int port = served.port();
  // Its length from sizeof, not counted by hand: a count one too many read
  // past the literal (AddressSanitizer's find, CI's sanitizer stage).
  static constexpr char kBinaryBody[] = "POST /index HTTP/1.1\r\nContent-Length: 4\r\n\r\n\x00\x01\x02\x03";
  const std::vector<std::pair<std::string, int>> corpus = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET / HTTP/9.9\r\n\r\n", 400},
      {"POST /index HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"data\"", 0},  // truncated body, then silence
      {"POST /index HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400},
      {"POST /index HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
      {"POST /index HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"GET / HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n", 431},
      {"GET /" + std::string(4000, 'a') + " HTTP/1.1\r\n\r\n", 431},
      {std::string(kBinaryBody, sizeof kBinaryBody - 1), 400},  // the NUL bytes are part of it
      {"POST /index HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"data\": [1]", 400},
  };
  for (const auto& [raw, status] : corpus) {
    const std::string r = raw_exchange(port, raw, std::chrono::seconds(3), status != 0);
    if (status) BOOST_TEST(status_of(r) == status, raw.substr(0, 60) << " -> " << r.substr(0, 300));
    BOOST_TEST(status_of(raw_exchange(port, http_request("GET", "/", ""))) == 200, "after " << raw.substr(0, 60));
  }
}

BOOST_AUTO_TEST_CASE(a_slow_client_is_dropped_and_the_others_are_not_slowed) {
  GatewayOptions o;
  o.read_timeout_ms = 300;
  ServedFlow served(kTwoStep, o);
  const int port = served.port();
  std::atomic<bool> slow_dropped{false};
  std::thread slowloris([&] {
    // One header byte every 100 ms: the request never completes in 300 ms.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for (std::size_t i = 0; i < req.size(); ++i) {
      if (::send(fd, &req[i], 1, MSG_NOSIGNAL) <= 0) {
        slow_dropped = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::close(fd);
  });
  // Meanwhile a normal client is served at once, many times over.
  Client client(served.url());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) BOOST_TEST(client.post("/index", texts(1)).size() == 1u);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)));
  slowloris.join();
  BOOST_TEST(slow_dropped.load());
}

BOOST_AUTO_TEST_CASE(idle_connections_close_but_a_long_request_keeps_its_connection) {
  GatewayOptions o;
  o.idle_timeout_ms = 300;
  ServedFlow served(kTwoStep, o);
  // Nothing sent: the server closes the connection after the idle timeout.
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(raw_exchange(served.port(), "", std::chrono::seconds(5)).empty());
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3)));
  // A request that takes longer than the idle timeout is answered, and the
  // kept-alive connection serves the next one.
  KeptAlive connection(served.port());
  auto keep = [](const std::string& body) {
    return "POST /index HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  std::string r = connection.exchange(keep(R"({"data": [{"tags": {"sleep_ms": 900}}]})"));
  BOOST_TEST(status_of(r) == 200, r);
  r = connection.exchange(keep(R"({"data": [{"text": "next"}]})"));
  BOOST_TEST(status_of(r) == 200, r);
}

BOOST_AUTO_TEST_CASE(metrics_use_jinas_names_and_count_what_happened) {
  GatewayOptions o;
  o.monitoring = true;
  ServedFlow served(kTwoStep, o);
  BOOST_REQUIRE(served.gateway().monitoring_port() > 0);
  post_json(served.port(), "/index", R"({"data": [{"text": "a"}, {"text": "b"}]})");
  post_json(served.port(), "/index", R"({"data": [{"text": "c", "tags": {"fail": true}}]})");
  post_json(served.port(), "/nope", "{}");
  post_json(served.port(), "/made-up-" + std::string(50, 'x'), "{}");
  const std::string m = body_of(raw_exchange(served.gateway().monitoring_port(), http_request("GET", "/metrics", "")));
  BOOST_TEST(contains(m, "jina_successful_requests_total{endpoint=\"/index\"} 1"), m);
  BOOST_TEST(contains(m, "jina_failed_requests_total{endpoint=\"/index\"} 1"), m);
  BOOST_TEST(contains(m, "jina_failed_requests_total{endpoint=\"other\"} 2"), m);  // made-up paths share one series
  BOOST_TEST(!contains(m, "made-up"));
  BOOST_TEST(contains(m, "jina_document_processed_total{executor=\"tagger\"} 3"), m);
  BOOST_TEST(contains(m, "docflow_executor_failures_total{executor=\"misbehaver\"} 1"), m);
  BOOST_TEST(contains(m, "jina_receiving_request_seconds_bucket{endpoint=\"/index\",le=\"+Inf\"} 2"), m);
  BOOST_TEST(contains(m, "jina_process_request_seconds_count{executor=\"custom\"}"), m);
  BOOST_TEST(contains(m, "docflow_http_responses_total{code=\"404\"} 2"), m);
  BOOST_TEST(contains(m, "jina_number_of_pending_requests 0"), m);
  // The API port does not serve metrics, the metrics port nothing else.
  BOOST_TEST(status_of(raw_exchange(served.port(), http_request("GET", "/metrics", ""))) == 404);
  BOOST_TEST(status_of(raw_exchange(served.gateway().monitoring_port(), http_request("GET", "/", ""))) == 404);
}

BOOST_AUTO_TEST_CASE(over_the_connection_limit_a_client_gets_503) {
  GatewayOptions o;
  o.max_connections = 2;
  ServedFlow served(kTwoStep, o);
  Client a(served.url()), b(served.url());
  BOOST_TEST(a.get("/").first == 200);
  BOOST_TEST(b.get("/").first == 200);
  const std::string r = raw_exchange(served.port(), http_request("GET", "/", ""));
  BOOST_TEST(status_of(r) == 503, r);
  BOOST_TEST(contains(r, "too many connections (the limit is 2"), r);
}

BOOST_AUTO_TEST_CASE(overload_answers_503_and_the_client_retries_with_backoff) {
  // Room for one request in the flow and none waiting: the others are 503.
  GatewayOptions o;
  o.max_queued = 0;
  ServedFlow served("  - {name: misbehaver, uses: Misbehaver}\n", o, "prefetch: 1");
  std::string busy;
  std::thread slow([&] { busy = post_json(served.port(), "/index", R"({"data": [{"tags": {"sleep_ms": 300}}]})"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string r = post_json(served.port(), "/index", R"({"data": [{"text": "b"}]})");
  slow.join();
  BOOST_TEST(status_of(busy) == 200, busy);
  BOOST_TEST(status_of(r) == 503, r);
  BOOST_TEST(contains(r, "overloaded: 1 requests in the flow and 0 waiting"), r);
  BOOST_TEST(contains(r, "Retry-After: 1"), r);
  // The client keeps 4 requests in flight: most meet a 503, are retried
  // after a backoff, and every answer still comes back once, in order.
  ClientOptions co;
  co.backoff_ms = 5;
  co.retries = 50;
  Client client(served.url(), co);
  DocumentArray docs = texts(20);
  for (auto& d : docs) d.tags["sleep_ms"] = 2;
  DocumentArray back = client.post("/index", docs, Value(), 1);
  BOOST_REQUIRE_EQUAL(back.size(), docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) BOOST_TEST(back[i].id == docs[i].id);
  // With no retries left the 503 is the client's error, naming the request.
  co.retries = 0;
  Client impatient(served.url(), co);
  std::thread slow_again([&] { post_json(served.port(), "/index", R"({"data": [{"tags": {"sleep_ms": 300}}]})"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  try {
    impatient.post("/index", texts(1));
    BOOST_ERROR("expected a ClientError");
  } catch (const ClientError& e) {
    BOOST_TEST(e.status() == 503);
    BOOST_TEST(contains(e.what(), "request 0 to " + served.url() + " /index failed: 503 after 0 retries"), e.what());
  }
  slow_again.join();
}

BOOST_AUTO_TEST_CASE(bodies_held_at_once_are_bounded_across_connections) {
  GatewayOptions o;
  o.max_bytes_in_flight = 1000;
  ServedFlow served("  - {name: misbehaver, uses: Misbehaver}\n", o);
  const std::string big = R"({"data": [{"text": ")" + std::string(700, 'a') + R"(", "tags": {"sleep_ms": 300}}]})";
  std::string first;
  std::thread slow([&] { first = post_json(served.port(), "/index", big); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string second = post_json(served.port(), "/index", big);
  slow.join();
  BOOST_TEST(status_of(first) == 200, first);
  BOOST_TEST(status_of(second) == 503, second);
  BOOST_TEST(contains(second, "the limit is 1000"), second);
  // Once the first is answered, the next one fits again.
  BOOST_TEST(status_of(post_json(served.port(), "/index", big)) == 200);
}

BOOST_AUTO_TEST_CASE(a_client_without_a_server_says_where_it_tried) {
  ServedFlow served(kTwoStep);
  const std::string url = served.url();
  const int port = served.port();
  served.gateway().stop();
  try {
    Client client(url);
    client.post("/index", texts(1));
    BOOST_ERROR("expected a ClientError");
  } catch (const ClientError& e) {
    BOOST_TEST(contains(e.what(), "cannot connect to http://127.0.0.1:" + std::to_string(port)), e.what());
  }
  BOOST_CHECK_THROW(Client("https://example.com:443"), ClientError);
  BOOST_CHECK_THROW(Client("localhost"), ClientError);
}

BOOST_AUTO_TEST_CASE(stop_answers_every_accepted_request) {
  auto served = std::make_unique<ServedFlow>("  - {name: misbehaver, uses: Misbehaver}\n");
  const int port = served->port();
  std::vector<std::string> answers(8);
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      answers[i] = post_json(port, "/index", R"({"data": [{"text": "x", "tags": {"sleep_ms": 300}}]})");
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  BOOST_TEST(served->gateway().stop(std::chrono::seconds(10)));
  for (auto& t : clients) t.join();
  for (const auto& a : answers) BOOST_TEST(status_of(a) == 200, a);
  // After stop nothing is accepted.
  BOOST_TEST(raw_exchange(port, http_request("GET", "/", ""), std::chrono::milliseconds(500)) == kNoConnection);
  served.reset();
}

BOOST_AUTO_TEST_SUITE_END()
