#include "docflow/client.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <thread>

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "error_answer.hpp"
#include "http_connection.hpp"

namespace docflow {

namespace http = boost::beast::http;

namespace {

struct Pending {
  std::size_t batch = 0;
  std::string body;
  int attempts = 0;
};

}  // namespace

struct Client::Impl {
  explicit Impl(const std::string& url, ClientOptions o) : conn(url, std::move(o)) {}
  serve::HttpConnection conn;
};

Client::Client(const std::string& url, ClientOptions options) {
  if (options.in_flight == 0) options.in_flight = 1;
  impl_ = std::make_unique<Impl>(url, std::move(options));
}

Client::~Client() = default;

const std::string& Client::url() const { return impl_->conn.url(); }

std::pair<int, std::string> Client::get(const std::string& path) { return impl_->conn.get(path); }

void Client::post(const std::string& endpoint, const NextBatch& next, const docarray::Value& parameters,
                  const OnResponse& on_response) {
  auto& conn = impl_->conn;
  const ClientOptions& options = conn.options();
  std::deque<Pending> pending, retry;
  std::map<std::size_t, ClientResponse> done;  // answered, waiting for their turn
  std::size_t next_batch = 0, next_delivery = 0;
  bool more = true;
  int backoff = options.backoff_ms;
  int connect_failures = 0;

  auto encode = [&](const docarray::DocumentArray& docs) {
    docarray::Value fields = docarray::Value::map();
    fields["exec_endpoint"] = endpoint;
    if (!parameters.is_null()) fields["parameters"] = parameters;
    return options.binary ? docarray::to_msgpack_envelope(fields, docs) : docarray::to_json_envelope(fields, docs);
  };
  auto give_up = [&](const Pending& p, const std::string& why, int status) {
    throw ClientError("request " + std::to_string(p.batch) + " to " + conn.url() + " " + endpoint + " " + why, status);
  };
  auto requeue_all = [&](int extra_attempt) {
    for (auto& p : pending) {
      p.attempts += extra_attempt;
      if (p.attempts > options.retries) give_up(p, "failed: the connection was lost " + std::to_string(p.attempts) + " times", 0);
      retry.push_back(std::move(p));
    }
    pending.clear();
    std::sort(retry.begin(), retry.end(), [](const Pending& a, const Pending& b) { return a.batch < b.batch; });
  };

  while (true) {
    // Retries go out once everything written before them is answered, after a backoff.
    if (!retry.empty() && pending.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff = std::min(backoff * 2, 10000);
    }
    try {
      if (!conn.connected()) conn.connect();
      connect_failures = 0;
    } catch (const ClientError&) {
      // Nothing reached the server yet: say so now. Otherwise the server may
      // be restarting: back off and try again, up to `retries` times.
      if (next_batch == 0 || ++connect_failures > options.retries) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff = std::min(backoff * 2, 10000);
      continue;
    }
    bool lost = false;
    while (!lost && pending.size() < options.in_flight) {
      Pending p;
      if (!retry.empty() && pending.empty()) {
        p = std::move(retry.front());
        retry.pop_front();
      } else if (retry.empty() && more) {
        docarray::DocumentArray batch;
        more = next(batch);
        if (!more) break;
        p.batch = next_batch++;
        p.body = encode(batch);
      } else {
        break;
      }
      const bool ok = conn.write(conn.request(http::verb::post, "/post", p.body));
      pending.push_back(std::move(p));
      if (!ok) lost = true;
    }
    if (pending.empty() && retry.empty()) break;
    if (pending.empty()) continue;
    std::optional<serve::HttpConnection::Response> res;
    if (!lost) res = conn.read();
    if (!res) {
      conn.close();
      requeue_all(1);
      continue;
    }
    Pending p = std::move(pending.front());
    pending.pop_front();
    const int status = static_cast<int>(res->result_int());
    if (!res->keep_alive()) {
      conn.close();
      requeue_all(0);  // answered by nobody: the server closed after this one
    }
    if (status == 503) {
      if (++p.attempts > options.retries)
        give_up(p, "failed: 503 after " + std::to_string(options.retries) + " retries: " + serve::describe_error_answer(res->body(), options.binary), status);
      retry.push_back(std::move(p));
      std::sort(retry.begin(), retry.end(), [](const Pending& a, const Pending& b) { return a.batch < b.batch; });
      continue;
    }
    backoff = options.backoff_ms;
    if (status != 200)
      give_up(p, "failed with HTTP " + std::to_string(status) + ": " + serve::describe_error_answer(res->body(), options.binary), status);
    docarray::Envelope env;
    try {
      env = options.binary ? docarray::parse_msgpack_envelope(res->body()) : docarray::parse_json_envelope(res->body());
    } catch (const docarray::Error& e) {
      give_up(p, std::string("got an answer that does not parse: ") + e.what(), status);
    }
    ClientResponse out;
    out.batch = p.batch;
    out.docs = std::move(env.docs);
    if (const docarray::Value* h = env.fields.find("header")) out.header = *h;
    if (const docarray::Value* pa = env.fields.find("parameters")) out.parameters = *pa;
    done.emplace(p.batch, std::move(out));
    while (!done.empty() && done.begin()->first == next_delivery) {
      on_response(done.begin()->second);
      done.erase(done.begin());
      ++next_delivery;
    }
  }
}

docarray::DocumentArray Client::post(const std::string& endpoint, const docarray::DocumentArray& docs,
                                     const docarray::Value& parameters, std::size_t request_size) {
  if (request_size == 0) request_size = 1;
  std::size_t offset = 0;
  bool sent_empty = false;
  docarray::DocumentArray out;
  post(
      endpoint,
      [&](docarray::DocumentArray& batch) {
        if (docs.empty()) {
          if (sent_empty) return false;
          sent_empty = true;  // one request without documents (it may carry parameters)
          return true;
        }
        if (offset >= docs.size()) return false;
        for (std::size_t i = offset; i < std::min(docs.size(), offset + request_size); ++i) batch.append(docs[i]);
        offset += request_size;
        return true;
      },
      parameters, [&](ClientResponse& r) {
        for (auto& d : r.docs) out.append(std::move(d));
      });
  return out;
}

}  // namespace docflow
