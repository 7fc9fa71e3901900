#include "remote_executor.hpp"

#include <nlohmann/json.hpp>

#include <set>
#include <thread>

#include "../serve/event_wire.hpp"
#include "docflow/error.hpp"

namespace docflow {
namespace {

constexpr int kDownMs = 5000;

std::string url_of(const std::string& address) {
  return address.rfind("http://", 0) == 0 ? address : "http://" + address;
}

}  // namespace

RemoteExecutor::RemoteExecutor(ExecutorContext context, RemoteOptions options)
    : Executor(std::move(context)), options_(std::move(options)) {
  options_.timeout_ready_ms = limit_ms(options_.timeout_ready_ms);
  options_.timeout_send_ms = limit_ms(options_.timeout_send_ms);
  const std::size_t n = options_.addresses.size();
  const std::size_t own = static_cast<std::size_t>(this->context().replica_id) % std::max<std::size_t>(n, 1);
  for (std::size_t i = 0; i < n; ++i) addresses_.push_back(Address{url_of(options_.addresses[(own + i) % n]), nullptr, {}});
}

RemoteExecutor::~RemoteExecutor() = default;

Client& RemoteExecutor::client(Address& a) {
  if (!a.client) {
    ClientOptions o;
    o.binary = true;
    o.in_flight = 1;
    o.retries = 1;  // one reconnect on the same replica; then the next replica
    o.backoff_ms = 50;
    o.timeout_ms = options_.timeout_send_ms;
    o.token = options_.token;
    a.client = std::make_unique<Client>(a.url, o);
  }
  return *a.client;
}

void RemoteExecutor::open() {
  if (addresses_.empty()) throw Error("a remote executor needs `host` and `port` (or `hosts`)");
  // Its own address must answer before the flow starts (Jina's timeout_ready);
  // its endpoints become this executor's, so that the gateway here routes
  // them and a remote /search gets the search page.
  Address& own = addresses_.front();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ready_ms);
  std::string last = "no answer";
  for (int attempt = 0;; ++attempt) {
    try {
      auto [status, body] = client(own).get("/status");
      if (status == 200) {
        std::set<std::string> endpoints;
        const nlohmann::json status_json = nlohmann::json::parse(body);  // named: a range-for over a temporary's member dangles
        for (const auto& x : status_json.at("executors"))
          for (const auto& e : x.at("endpoints")) endpoints.insert(e.get<std::string>());
        for (const auto& e : endpoints) on(e, [this](Request& r) { forward(r); });
        log().info(name(), "remote executor at " + own.url + " (endpoints: " +
                               [&] {
                                 std::string s;
                                 for (const auto& e : endpoints) s += (s.empty() ? "" : ", ") + e;
                                 return s.empty() ? std::string("none") : s;
                               }() +
                               ")");
        return;
      }
      last = "/status answered HTTP " + std::to_string(status);
    } catch (const std::exception& e) {
      last = e.what();
      own.client.reset();
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error("the remote executor at " + own.url + " did not become ready within timeout_ready (" +
                  std::to_string(options_.timeout_ready_ms) + " ms): " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * (attempt + 1), 1000)));
  }
}

void RemoteExecutor::on_event(const Event& event) {
  // Every replica here forwards the event to its own address: every remote
  // replica sees it, as every local one does.
  Address& own = addresses_.front();
  try {
    client(own).post(serve::kEventEndpoint, docarray::DocumentArray{}, serve::event_parameters(event));
  } catch (const ClientError& e) {
    own.client.reset();
    throw Error("at " + own.url + ": the stream event did not get through: " + e.what());
  }
}

void RemoteExecutor::forward(Request& request) {
  std::string tried;
  const auto now = std::chrono::steady_clock::now();
  // Replicas that are up first (this replica's own before the others), then
  // the ones marked down, in case they are back.
  std::vector<Address*> order;
  for (auto& a : addresses_)
    if (a.down_until <= now) order.push_back(&a);
  for (auto& a : addresses_)
    if (a.down_until > now) order.push_back(&a);
  for (Address* a : order) {
    try {
      bool sent = false;
      ClientResponse answer;
      client(*a).post(
          request.endpoint,
          [&](docarray::DocumentArray& batch) {
            if (sent) return false;
            batch = request.docs;  // a copy (tensors are shared): kept for the next replica if this one fails
            sent = true;
            return true;
          },
          request.parameters, [&](ClientResponse& r) { answer = std::move(r); });
      request.docs = std::move(answer.docs);
      if (!answer.parameters.is_null()) request.parameters = std::move(answer.parameters);
      a->down_until = {};
      return;
    } catch (const ClientError& e) {
      if (e.status() != 0 && e.status() != 503) throw Error("at " + a->url + ": " + e.what());
      // Unreachable or overloaded: the next replica gets the request.
      tried += (tried.empty() ? "" : "; ") + std::string(e.what());
      a->client.reset();
      a->down_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDownMs);
    }
  }
  throw Error("no replica of the remote executor answered: " + tried);
}

}  // namespace docflow
