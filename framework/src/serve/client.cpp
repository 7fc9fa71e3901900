#include "docflow/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <deque>
#include <map>
#include <optional>
#include <thread>

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "error_answer.hpp"
#include "flow_address.hpp"

namespace docflow {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct Pending {
  std::size_t batch = 0;
  std::string body;
  int attempts = 0;
};

}  // namespace

struct Client::Impl {
  std::string url, host, port;
  ClientOptions options;
  net::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  void run_io() {
    io.restart();
    io.run();
  }

  void connect() {
    stream.emplace(io);
    buffer.clear();
    beast::error_code ec;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(host, port, ec);
    if (!ec) {
      // Asynchronous operations run to completion here so that the stream's
      // expiry bounds each of them (blocking calls would ignore it).
      stream->expires_after(std::chrono::milliseconds(options.timeout_ms));
      stream->async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
      run_io();
    }
    if (ec) {
      stream.reset();
      throw ClientError("cannot connect to " + url + ": " + ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
  }

  http::request<http::string_body> request(http::verb verb, const std::string& target, std::string body) const {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host + ":" + port);
    req.set(http::field::user_agent, "docflow-client");
    if (!options.token.empty()) req.set(http::field::authorization, "Bearer " + options.token);
    if (verb != http::verb::get) {
      req.set(http::field::content_type, options.binary ? "application/x-msgpack" : "application/json");
      req.body() = std::move(body);
    }
    req.set(http::field::accept, options.binary ? "application/x-msgpack" : "application/json");
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  // False when the connection is gone (the caller reconnects).
  bool write(const http::request<http::string_body>& req) {
    stream->expires_after(std::chrono::milliseconds(options.timeout_ms));
    beast::error_code ec;
    http::async_write(*stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    run_io();
    return !ec;
  }

  std::optional<http::response<http::string_body>> read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);  // the answer is as large as the server made it
    parser.header_limit(1 << 20);
    stream->expires_after(std::chrono::milliseconds(options.timeout_ms));
    beast::error_code ec;
    http::async_read(*stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run_io();
    if (ec == beast::error::timeout) throw ClientError(url + " did not answer within " + std::to_string(options.timeout_ms) + " ms");
    if (ec) return std::nullopt;
    return parser.release();
  }
};

namespace serve {

FlowAddress parse_flow_address(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    throw ClientError("'" + url + "': docflow serves plain HTTP (http://HOST:PORT); put TLS in front with a proxy");
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    throw ClientError("'" + url + "' is not a flow's address: expected http://HOST:PORT");
  FlowAddress a;
  a.host = rest.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  a.port = rest.substr(colon + 1);
  a.url = "http://" + rest;
  return a;
}

}  // namespace serve

Client::Client(const std::string& url, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const serve::FlowAddress a = serve::parse_flow_address(url);
  impl_->host = a.host;
  impl_->port = a.port;
  impl_->url = a.url;
  if (impl_->options.in_flight == 0) impl_->options.in_flight = 1;
}

Client::~Client() = default;

const std::string& Client::url() const { return impl_->url; }

std::pair<int, std::string> Client::get(const std::string& path) {
  auto& im = *impl_;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!im.stream) im.connect();
    if (im.write(im.request(http::verb::get, path, ""))) {
      if (auto res = im.read()) {
        if (!res->keep_alive()) im.stream.reset();
        return {static_cast<int>(res->result_int()), std::move(res->body())};
      }
    }
    im.stream.reset();  // a kept-alive connection the server closed: once more on a new one
  }
  throw ClientError("the connection to " + im.url + " was lost");
}

void Client::post(const std::string& endpoint, const NextBatch& next, const docarray::Value& parameters,
                  const OnResponse& on_response) {
  auto& im = *impl_;
  std::deque<Pending> pending, retry;
  std::map<std::size_t, ClientResponse> done;  // answered, waiting for their turn
  std::size_t next_batch = 0, next_delivery = 0;
  bool more = true;
  int backoff = im.options.backoff_ms;
  int connect_failures = 0;

  auto encode = [&](const docarray::DocumentArray& docs) {
    docarray::Value fields = docarray::Value::map();
    fields["exec_endpoint"] = endpoint;
    if (!parameters.is_null()) fields["parameters"] = parameters;
    return im.options.binary ? docarray::to_msgpack_envelope(fields, docs) : docarray::to_json_envelope(fields, docs);
  };
  auto give_up = [&](const Pending& p, const std::string& why, int status) {
    throw ClientError("request " + std::to_string(p.batch) + " to " + im.url + " " + endpoint + " " + why, status);
  };
  auto requeue_all = [&](int extra_attempt) {
    for (auto& p : pending) {
      p.attempts += extra_attempt;
      if (p.attempts > im.options.retries) give_up(p, "failed: the connection was lost " + std::to_string(p.attempts) + " times", 0);
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
      if (!im.stream) im.connect();
      connect_failures = 0;
    } catch (const ClientError&) {
      // Nothing reached the server yet: say so now. Otherwise the server may
      // be restarting: back off and try again, up to `retries` times.
      if (next_batch == 0 || ++connect_failures > im.options.retries) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff = std::min(backoff * 2, 10000);
      continue;
    }
    bool lost = false;
    while (!lost && pending.size() < im.options.in_flight) {
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
      const bool ok = im.write(im.request(http::verb::post, "/post", p.body));
      pending.push_back(std::move(p));
      if (!ok) lost = true;
    }
    if (pending.empty() && retry.empty()) break;
    if (pending.empty()) continue;
    std::optional<http::response<http::string_body>> res;
    if (!lost) res = im.read();
    if (!res) {
      im.stream.reset();
      requeue_all(1);
      continue;
    }
    Pending p = std::move(pending.front());
    pending.pop_front();
    const int status = static_cast<int>(res->result_int());
    if (!res->keep_alive()) {
      im.stream.reset();
      requeue_all(0);  // answered by nobody: the server closed after this one
    }
    if (status == 503) {
      if (++p.attempts > im.options.retries)
        give_up(p, "failed: 503 after " + std::to_string(im.options.retries) + " retries: " + serve::describe_error_answer(res->body(), im.options.binary), status);
      retry.push_back(std::move(p));
      std::sort(retry.begin(), retry.end(), [](const Pending& a, const Pending& b) { return a.batch < b.batch; });
      continue;
    }
    backoff = im.options.backoff_ms;
    if (status != 200)
      give_up(p, "failed with HTTP " + std::to_string(status) + ": " + serve::describe_error_answer(res->body(), im.options.binary), status);
    docarray::Envelope env;
    try {
      env = im.options.binary ? docarray::parse_msgpack_envelope(res->body()) : docarray::parse_json_envelope(res->body());
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

std::string read_token_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw Error("cannot read the token file " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) throw Error("the token file " + file + " is empty");
  if (token.find_first_of("\r\n") != std::string::npos) throw Error("the token file " + file + " holds more than one line");
  return token;
}

std::string default_token() {
  const char* t = std::getenv("DOCFLOW_TOKEN");
  return t ? t : "";
}

}  // namespace docflow
