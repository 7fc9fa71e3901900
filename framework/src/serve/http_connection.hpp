#pragma once
// One keep-alive HTTP/1.1 connection to a served flow or a `flow executor`,
// each step bounded by the client's timeout: what docflow::Client sends its
// batches over and `flow ping` asks a flow's health with. Nothing here
// touches a tensor, so `flow ping` (a Kubernetes probe, run every few
// seconds in every pod) loads it without LibTorch.
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <optional>
#include <string>
#include <utility>

#include "docflow/client_options.hpp"

namespace docflow::serve {

class HttpConnection {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  // `url` as parse_flow_address takes it; a ClientError naming it otherwise.
  HttpConnection(const std::string& url, ClientOptions options);

  const std::string& url() const { return url_; }
  const ClientOptions& options() const { return options_; }

  bool connected() const { return stream_.has_value(); }
  // A ClientError naming the URL when the server cannot be reached in time.
  void connect();
  void close() { stream_.reset(); }

  // The request with the host, the token and the body's type set.
  Request request(boost::beast::http::verb verb, const std::string& target, std::string body) const;
  // False when the connection is gone (the caller reconnects).
  bool write(const Request& request);
  // The next answer; none when the connection is gone; a ClientError when
  // nothing came within the timeout.
  std::optional<Response> read();

  // GET PATH on a new or kept connection, once more on a new one when a
  // kept connection turns out closed: the status code and the body.
  std::pair<int, std::string> get(const std::string& path);

 private:
  void run_io();

  std::string url_, host_, port_;
  ClientOptions options_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace docflow::serve
