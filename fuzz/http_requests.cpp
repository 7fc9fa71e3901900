// HTTP requests as a client on the network sends them: the bytes go through
// Beast's parser with the gateway's limits, then through the gateway's API
// (routes, bodies as JSON or msgpack, parameters, target_executor) over a
// real, open flow. Every request must get an answer with a status and a
// JSON or msgpack body; a crash, a hang or a request left unanswered is a
// finding.
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <unistd.h>

#include "docflow/flow.hpp"
#include "docflow/gateway.hpp"
#include "http_api.hpp"

namespace {

namespace http = boost::beast::http;

struct Service {
  docflow::Flow flow;
  docflow::serve::Metrics metrics{{"a", "b"}};
  boost::asio::io_context io;
  std::unique_ptr<docflow::serve::HttpApi> api;

  std::filesystem::path workspace =
      std::filesystem::temp_directory_path() / ("docflow-fuzz-http-" + std::to_string(::getpid()));

  Service()
      : flow(docflow::Flow::from_config(docflow::parse_flow_text(
            "jtype: Flow\nwith: {name: fuzz, prefetch: 2}\nexecutors:\n  - name: a\n  - name: b\n"))) {
    flow.isolate_failures(true);
    flow.open(workspace);
    docflow::GatewayOptions options;
    options.max_docs = 64;
    options.token = "";
    api = std::make_unique<docflow::serve::HttpApi>(flow, options, metrics, io);
  }
  ~Service() {
    flow.close();
    std::error_code ec;
    std::filesystem::remove_all(workspace, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  static Service service;
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !ec && !parser.is_done()) {
    std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (n == 0 && !ec) break;
    used += n;
  }
  // The end of the connection, as the server's read sees it; Beast asserts
  // that put_eof() follows at least one byte (an empty connection never
  // reaches the parser), which fuzz.sh's builds check (no -DNDEBUG).
  if (!ec && !parser.is_done() && parser.got_some()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;  // the transport answers these (400, 413, 431) without the API
  std::promise<docflow::serve::HttpResponse> answer;
  auto future = answer.get_future();
  auto once = std::make_shared<std::once_flag>();
  service.api->handle(parser.release(), [&answer, once](docflow::serve::HttpResponse res) {
    std::call_once(*once, [&] { answer.set_value(std::move(res)); });
  });
  // Answers that wait for the flow come from its pool; posted starts run here.
  int spins = 0;
  while (future.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
    service.io.restart();
    service.io.poll();
    if (++spins > 20000) {
      std::fprintf(stderr, "a request was not answered within 20 s\n");
      std::abort();
    }
  }
  docflow::serve::HttpResponse res = future.get();
  const unsigned status = res.result_int();
  if (status < 200 || status > 599) std::abort();
  const auto type = res[http::field::content_type];
  if (status != 204 && type != "application/json" && type != "application/x-msgpack") std::abort();
  return 0;
}
