#include "http_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "flow_address.hpp"

namespace docflow {
namespace serve {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

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

HttpConnection::HttpConnection(const std::string& url, ClientOptions options) : options_(std::move(options)) {
  const FlowAddress a = parse_flow_address(url);
  host_ = a.host;
  port_ = a.port;
  url_ = a.url;
}

void HttpConnection::run_io() {
  io_.restart();
  io_.run();
}

void HttpConnection::connect() {
  stream_.emplace(io_);
  buffer_.clear();
  beast::error_code ec;
  tcp::resolver resolver(io_);
  auto results = resolver.resolve(host_, port_, ec);
  if (!ec) {
    // Asynchronous operations run to completion here so that the stream's
    // expiry bounds each of them (blocking calls would ignore it).
    stream_->expires_after(std::chrono::milliseconds(options_.timeout_ms));
    stream_->async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run_io();
  }
  if (ec) {
    stream_.reset();
    throw ClientError("cannot connect to " + url_ + ": " + ec.message());
  }
  stream_->socket().set_option(tcp::no_delay(true), ec);
}

HttpConnection::Request HttpConnection::request(http::verb verb, const std::string& target, std::string body) const {
  Request req{verb, target, 11};
  req.set(http::field::host, host_ + ":" + port_);
  req.set(http::field::user_agent, "docflow-client");
  if (!options_.token.empty()) req.set(http::field::authorization, "Bearer " + options_.token);
  if (verb != http::verb::get) {
    req.set(http::field::content_type, options_.binary ? "application/x-msgpack" : "application/json");
    req.body() = std::move(body);
  }
  req.set(http::field::accept, options_.binary ? "application/x-msgpack" : "application/json");
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

bool HttpConnection::write(const Request& req) {
  stream_->expires_after(std::chrono::milliseconds(options_.timeout_ms));
  beast::error_code ec;
  http::async_write(*stream_, req, [&](beast::error_code e, std::size_t) { ec = e; });
  run_io();
  return !ec;
}

std::optional<HttpConnection::Response> HttpConnection::read() {
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);  // the answer is as large as the server made it
  parser.header_limit(1 << 20);
  stream_->expires_after(std::chrono::milliseconds(options_.timeout_ms));
  beast::error_code ec;
  http::async_read(*stream_, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  run_io();
  if (ec == beast::error::timeout) throw ClientError(url_ + " did not answer within " + std::to_string(options_.timeout_ms) + " ms");
  if (ec) return std::nullopt;
  return parser.release();
}

std::pair<int, std::string> HttpConnection::get(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!connected()) connect();
    if (write(request(http::verb::get, path, ""))) {
      if (auto res = read()) {
        if (!res->keep_alive()) close();
        return {static_cast<int>(res->result_int()), std::move(res->body())};
      }
    }
    close();  // a kept-alive connection the server closed: once more on a new one
  }
  throw ClientError("the connection to " + url_ + " was lost");
}

}  // namespace serve

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
