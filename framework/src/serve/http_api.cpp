#include "http_api.hpp"
#include "event_wire.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <random>
#include <regex>

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docarray/utf8.hpp"
#include "search_page.hpp"

namespace docflow::serve {

namespace net = boost::asio;
using docarray::Value;

namespace {

constexpr std::size_t kMaxTargetPattern = 256;

// The media type without parameters, lower case: "application/json; charset=utf-8" -> "application/json".
std::string media_type(boost::beast::string_view header) {
  std::string out;
  for (char c : header) {
    if (c == ';') break;
    if (c != ' ' && c != '\t') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool is_msgpack(const std::string& type) { return type == "application/x-msgpack" || type == "application/msgpack"; }

bool accepts_msgpack(boost::beast::string_view accept) {
  std::string a;
  for (char c : accept) a += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return a.find("application/x-msgpack") != std::string::npos || a.find("application/msgpack") != std::string::npos;
}

// Compares without an early exit, so the time taken says nothing about the token.
bool same_secret(boost::beast::string_view given, const std::string& expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

HttpResponse json_response(http::status status, const std::string& body) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = body;
  res.prepare_payload();
  return res;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

struct HttpApi::Call {
  Request request;
  std::optional<Event> event;  // POST /post to /_event: a stream event, not a request
  PostOptions options;
  std::string request_id, route, target;
  bool binary = false, dry_run = false;
  std::size_t body_bytes = 0;
  Respond respond;
  std::atomic<bool> answered{false};
  std::unique_ptr<net::steady_timer> timer;
};

HttpApi::HttpApi(Flow& flow, const GatewayOptions& options, Metrics& metrics, net::io_context& io, ThreadIo thread_io)
    : flow_(flow), options_(options), metrics_(metrics), io_(io), thread_io_(std::move(thread_io)), prefetch_(static_cast<std::size_t>(flow.config().prefetch)) {
  std::set<std::string> eps = {"/index", "/search", "/update", "/delete"};
  for (const auto& [name, bound] : flow.executor_endpoints()) {
    executors_.push_back(name);
    for (const auto& e : bound) searches_ = searches_ || e == "/search";
    for (const auto& e : bound) any_endpoint_ = any_endpoint_ || e == "*";
    for (const auto& e : bound)
      if (e != "*" && !e.empty() && e.front() == '/' && e != "/post" && e != "/status" && e != "/dry_run") eps.insert(e);
  }
  endpoints_.assign(eps.begin(), eps.end());
  id_seed_ = std::random_device{}();
  id_seed_ = (id_seed_ << 32) ^ std::random_device{}();
}

net::io_context* HttpApi::this_thread_io() const { return thread_io_ ? thread_io_() : nullptr; }

net::io_context& HttpApi::here() {
  net::io_context* io = this_thread_io();
  return io ? *io : io_;
}

std::string HttpApi::next_request_id() {
  std::uint64_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = ++request_counter_;
  }
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(id_seed_),
                static_cast<unsigned long long>(n));
  return buf;
}

std::string HttpApi::route_name(const std::string& path) const {
  if (path == "/" || path == "/status" || path == "/dry_run" || path == "/post" || path == "/ui") return path;
  if (std::binary_search(endpoints_.begin(), endpoints_.end(), path)) return path;
  return "other";  // never a name a client made up: metrics stay bounded
}

void HttpApi::handle(HttpRequest&& req, Reply reply) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string path(req.target());
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  const bool cors = options_.cors;
  const bool head = req.method() == http::verb::head;
  auto metric_route = std::make_shared<std::string>(route_name(path));
  Respond respond = [this, t0, reply, cors, head, metric_route](HttpResponse res) {
    if (cors) {
      res.set(http::field::access_control_allow_origin, "*");
      res.set(http::field::access_control_expose_headers, "X-Request-Id");
    }
    if (head) res.body().clear();
    metrics_.request(*metric_route, static_cast<int>(res.result_int()),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    reply(std::move(res));
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) {
      HttpResponse res = error_response(http::status::service_unavailable, "the service is shutting down");
      res.keep_alive(false);
      return respond(std::move(res));
    }
  }
  if (req.method() == http::verb::options) {
    if (!cors) {
      HttpResponse res = error_response(http::status::method_not_allowed, "CORS is off for this flow (`cors: true` turns it on)");
      return respond(std::move(res));
    }
    HttpResponse res{http::status::no_content, 11};
    res.set(http::field::access_control_allow_methods, "GET, POST, PUT, DELETE, OPTIONS");
    res.set(http::field::access_control_allow_headers, "Content-Type, Accept, Authorization");
    res.set(http::field::access_control_max_age, "600");
    res.prepare_payload();
    return respond(std::move(res));
  }
  // Health stays open so that a probe needs no secret, and so does the search
  // page (static HTML, no data: a browser cannot send a bearer token when it
  // navigates, so the page asks for the token and sends it with each search);
  // everything else, when a token is set, needs it.
  if (!options_.token.empty() && path != "/" && path != "/ui") {
    if (!same_secret(req[http::field::authorization], "Bearer " + options_.token)) {
      HttpResponse res = error_response(http::status::unauthorized, "this service needs `Authorization: Bearer TOKEN`");
      res.set(http::field::www_authenticate, "Bearer realm=\"docflow\"");
      return respond(std::move(res));
    }
  }
  route(req, path, respond);
}

void HttpApi::route(HttpRequest& req, const std::string& path, Respond& respond) {
  const http::verb m = req.method();
  const bool get = m == http::verb::get || m == http::verb::head;
  auto method_not_allowed = [&](const char* allowed) {
    HttpResponse res = error_response(http::status::method_not_allowed,
                                      std::string(req.method_string()) + " " + path + " is not served; use " + allowed);
    res.set(http::field::allow, allowed);
    respond(std::move(res));
  };
  if (path == "/") return get ? respond(json_response(http::status::ok, "{}")) : method_not_allowed("GET");
  if (path == "/status") {
    if (!get) return method_not_allowed("GET");
    nlohmann::ordered_json j;
    j["docflow"] = {{"version", DOCFLOW_VERSION}};
    j["flow"] = docarray::escape_invalid_utf8(flow_.config().name);
    j["uptime_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      j["requests_in_flight"] = in_flight_;
      j["requests_waiting"] = waiting_.size();
    }
    j["prefetch"] = prefetch_;
    j["endpoints"] = endpoints_;
    nlohmann::ordered_json execs = nlohmann::ordered_json::array();
    for (const auto& [name, bound] : flow_.executor_endpoints()) {
      const ExecutorConfig* c = flow_.config().find(name);
      execs.push_back({{"name", name}, {"uses", c ? c->uses : ""}, {"replicas", c ? c->replicas : 1}, {"endpoints", bound}});
    }
    j["executors"] = execs;
    return respond(json_response(http::status::ok, j.dump()));
  }
  if (path == "/ui" || path == "/ui/") {
    if (!get) return method_not_allowed("GET");
    if (!searches_) return respond(error_response(http::status::not_found, "/ui is the search page of flows with an executor bound to /search; this flow has none"));
    HttpResponse res{http::status::ok, 11};
    res.set(http::field::content_type, "text/html; charset=utf-8");
    // The page's own script and style, images from data: URLs and http(s) uris; nothing else.
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: http: https:; connect-src 'self'");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = kSearchPage;
    res.prepare_payload();
    return respond(std::move(res));
  }
  if (path == "/dry_run") {
    if (!get) return method_not_allowed("GET");
    auto call = std::make_shared<Call>();
    call->request.endpoint = "/dry_run";
    call->request_id = next_request_id();
    call->route = "/dry_run";
    call->dry_run = true;
    call->respond = respond;
    return submit(call);
  }
  if (path == "/post") return m == http::verb::post ? flow_call(req, "", true, respond) : method_not_allowed("POST");
  if (!std::binary_search(endpoints_.begin(), endpoints_.end(), path)) {
    nlohmann::ordered_json j;
    j["code"] = 404;
    j["error"] = "Not Found";
    j["detail"] = "no route " + docarray::escape_invalid_utf8(path) + "; the flow serves " + joined(endpoints_) +
                  " (and /post, /, /status, /dry_run" + std::string(searches_ ? ", /ui)" : ")");
    j["endpoints"] = endpoints_;
    return respond(json_response(http::status::not_found, j.dump()));
  }
  const char* allowed = path == "/update" ? "PUT" : path == "/delete" ? "DELETE" : "POST";
  const http::verb expected = path == "/update" ? http::verb::put : path == "/delete" ? http::verb::delete_ : http::verb::post;
  if (m != expected) return method_not_allowed(allowed);
  flow_call(req, path, false, respond);
}

void HttpApi::flow_call(HttpRequest& req, const std::string& endpoint, bool is_post, Respond& respond) {
  auto bad = [&](http::status status, const std::string& detail) { respond(error_response(status, detail)); };
  const std::string type = media_type(req[http::field::content_type]);
  const bool binary_in = is_msgpack(type);
  if (!binary_in && !type.empty() && type != "application/json")
    return bad(http::status::unsupported_media_type,
               "Content-Type " + docarray::escape_invalid_utf8(type) +
                   " is not served; send application/json or application/x-msgpack");
  docarray::Envelope env;
  try {
    if (!req.body().empty()) env = binary_in ? docarray::parse_msgpack_envelope(req.body()) : docarray::parse_json_envelope(req.body());
  } catch (const docarray::Error& e) {
    return bad(http::status::bad_request, std::string("the request body: ") + e.what());
  } catch (const std::bad_alloc&) {
    return bad(http::status::payload_too_large, "the request body does not fit in memory");
  }
  if (env.docs.size() > options_.max_docs)
    return bad(http::status::payload_too_large, "the request has " + std::to_string(env.docs.size()) +
                                                    " documents, over the limit of " + std::to_string(options_.max_docs) +
                                                    " (send them in batches, or flow serve --max-docs)");
  auto call = std::make_shared<Call>();
  call->request.endpoint = endpoint;
  call->request.docs = std::move(env.docs);
  for (auto& [key, value] : env.fields.as_map()) {
    if (key == "parameters") {
      if (!value.is_null() && !value.is_map())
        return bad(http::status::bad_request, std::string("field 'parameters' expects an object, found ") + value.type_name());
      call->request.parameters = std::move(value);
    } else if (key == "exec_endpoint" && is_post) {
      if (!value.is_string() || value.as_string().empty() || value.as_string().front() != '/')
        return bad(http::status::bad_request, "field 'exec_endpoint' expects an endpoint such as \"/search\"");
      call->request.endpoint = value.as_string();
    } else if (key == "target_executor") {
      if (value.is_null()) continue;
      if (!value.is_string()) return bad(http::status::bad_request, "field 'target_executor' expects a string (a regex)");
      call->target = value.as_string();
    } else {
      return bad(http::status::bad_request, "unknown field '" + docarray::escape_invalid_utf8(key) + "' in the request (known: data, parameters, target_executor" +
                                                (is_post ? ", exec_endpoint)" : ")"));
    }
  }
  if (is_post && call->request.endpoint.empty())
    return bad(http::status::bad_request, "field 'exec_endpoint' is required by /post (for example \"/search\")");
  const bool is_event = is_post && call->request.endpoint == kEventEndpoint;
  if (is_event) {
    // A batch run elsewhere sends its stream events to executors served here.
    call->event = event_from_parameters(call->request.parameters);
    if (!call->event)
      return bad(http::status::bad_request, std::string(kEventEndpoint) + " expects parameters {\"kind\": \"end_of_epoch\" or "
                                            "\"end_of_stream\", \"epoch\": N, \"endpoint\": \"/train\"}");
  }
  if (is_post && !is_event && !any_endpoint_ &&
      !std::binary_search(endpoints_.begin(), endpoints_.end(), call->request.endpoint))
    return bad(http::status::not_found, "exec_endpoint " + docarray::escape_invalid_utf8(call->request.endpoint) +
                                            " is not an endpoint of the flow (endpoints: " + joined(endpoints_) + ")");
  if (!call->target.empty()) {
    // Jina matches target_executor with Python's re.match: a regex anchored
    // at the start of the executor's name. The pattern comes from the
    // network, so its size is bounded before std::regex (recursive) sees it.
    if (call->target.size() > kMaxTargetPattern)
      return bad(http::status::bad_request, "field 'target_executor' is longer than " + std::to_string(kMaxTargetPattern) + " characters");
    auto only = std::make_shared<std::vector<std::string>>();
    try {
      const std::regex re(call->target, std::regex::ECMAScript);
      for (const auto& name : executors_)
        if (std::regex_search(name, re, std::regex_constants::match_continuous)) only->push_back(name);
    } catch (const std::regex_error& e) {
      return bad(http::status::bad_request, "field 'target_executor' is not a valid regex: " + std::string(e.what()));
    }
    if (only->empty())
      return bad(http::status::bad_request, "target_executor '" + docarray::escape_invalid_utf8(call->target) +
                                                "' matches no executor (executors: " + joined(executors_) + ")");
    call->options.only_executors = std::move(only);
  }
  // With a deadline, no executor runs on a network thread: one that turned
  // slow there would hold back the 504 of every request on that thread.
  call->options.on_flow_threads = options_.timeout_send_ms > 0;
  call->binary = accepts_msgpack(req[http::field::accept]);
  call->body_bytes = req.body().size();
  call->request_id = next_request_id();
  call->route = route_name(call->request.endpoint);
  call->respond = respond;
  submit(call);
}

void HttpApi::submit(std::shared_ptr<Call> call) {
  bool start_now = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) {
      HttpResponse res = error_response(http::status::service_unavailable, "the service is shutting down");
      res.keep_alive(false);
      call->respond(std::move(res));
      return;
    }
    if (in_flight_ >= prefetch_ && waiting_.size() >= options_.max_queued) {
      HttpResponse res = error_response(http::status::service_unavailable,
                                        "overloaded: " + std::to_string(in_flight_) + " requests in the flow and " +
                                            std::to_string(waiting_.size()) + " waiting; retry later");
      res.set(http::field::retry_after, "1");
      call->respond(std::move(res));
      return;
    }
    if (bytes_held_ + call->body_bytes > options_.max_bytes_in_flight && accepted_ > 0) {
      HttpResponse res = error_response(http::status::service_unavailable,
                                        "overloaded: the requests being served hold " + std::to_string(bytes_held_) +
                                            " bytes of bodies (the limit is " + std::to_string(options_.max_bytes_in_flight) +
                                            "); retry later");
      res.set(http::field::retry_after, "1");
      call->respond(std::move(res));
      return;
    }
    ++accepted_;
    bytes_held_ += call->body_bytes;
    metrics_.pending.fetch_add(1);
    if (in_flight_ < prefetch_) {
      ++in_flight_;
      start_now = true;
    } else {
      waiting_.push_back(call);
    }
  }
  if (options_.timeout_send_ms > 0) {
    // On the network thread that read the request: arming it and cancelling
    // it from there (an answer most often comes back to that thread) wake no
    // other thread.
    call->timer = std::make_unique<net::steady_timer>(here(), std::chrono::milliseconds(options_.timeout_send_ms));
    call->timer->async_wait([call, ms = options_.timeout_send_ms](const boost::system::error_code& ec) {
      if (ec || call->answered.exchange(true)) return;
      call->respond(error_response(http::status::gateway_timeout,
                                   "the flow did not answer within timeout_send (" + std::to_string(ms) + " ms)"));
    });
  }
  if (start_now) start(call);
}

void HttpApi::start(std::shared_ptr<Call> call) {
  if (call->event) {
    flow_.post_event(*call->event, [this, call](Response r) { finish(call, std::move(r)); });
    return;
  }
  Request request = std::move(call->request);
  call->request = Request{request.endpoint, {}, {}};
  // Flow::post does not block here: the gateway admits at most `prefetch`
  // requests, and the flow frees a request's slot before its callback runs.
  flow_.post(std::move(request), [this, call](Response r) { finish(call, std::move(r)); }, call->options);
}

void HttpApi::finish(const std::shared_ptr<Call>& call, Response r) {
  release();
  if (call->timer) {
    auto& timer_io = static_cast<net::io_context&>(call->timer->get_executor().context());
    if (this_thread_io() == &timer_io) call->timer->cancel();
    else net::post(timer_io, [call] { call->timer->cancel(); });
  }
  const bool first = !call->answered.exchange(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --accepted_;
    bytes_held_ -= call->body_bytes;
    metrics_.pending.fetch_sub(1);
    idle_.notify_all();
  }
  if (!first) return;  // answered 504 already
  if (call->dry_run) {
    nlohmann::ordered_json j;
    j["code"] = r.error ? 1 : 0;
    j["description"] = "";
    j["exception"] = nullptr;
    if (r.error) {
      try {
        std::rethrow_exception(r.error);
      } catch (const std::exception& e) {
        j["description"] = docarray::escape_invalid_utf8(e.what());
      }
    }
    return call->respond(json_response(http::status::ok, j.dump()));
  }
  Value header = Value::map();
  header["requestId"] = call->request_id;
  header["status"]["code"] = 0;
  header["status"]["description"] = "";
  http::status status = http::status::ok;
  if (r.error) {
    header["status"]["code"] = 1;
    try {
      std::rethrow_exception(r.error);
    } catch (const ExecutorError& e) {
      status = http::status::internal_server_error;
      header["status"]["description"] = e.what();
      header["status"]["exception"]["name"] = "ExecutorError";
      header["status"]["exception"]["args"] = Value::list({e.message()});
      header["status"]["exception"]["executor"] = e.executor();
    } catch (const std::exception& e) {
      status = http::status::service_unavailable;  // the flow stopped
      header["status"]["description"] = e.what();
      header["status"]["exception"]["name"] = "Error";
      header["status"]["exception"]["args"] = Value::list({std::string(e.what())});
    }
    r.request.docs = {};
  }
  header["execEndpoint"] = call->request.endpoint;
  if (!call->target.empty()) header["targetExecutor"] = call->target;
  Value fields = Value::map();
  fields["header"] = std::move(header);
  fields["parameters"] = r.request.parameters.is_null() ? Value::map() : std::move(r.request.parameters);
  HttpResponse res{status, 11};
  try {
    res.body() = call->binary ? docarray::to_msgpack_envelope(fields, r.request.docs)
                              : docarray::to_json_envelope(fields, r.request.docs);
    res.set(http::field::content_type, call->binary ? "application/x-msgpack" : "application/json");
  } catch (const std::exception& e) {
    res = error_response(http::status::internal_server_error, std::string("the answer could not be encoded: ") + e.what() +
                                                                  (call->binary ? "" : " (ask for application/x-msgpack)"));
  }
  res.set("X-Request-Id", call->request_id);
  res.prepare_payload();
  call->respond(std::move(res));
}

void HttpApi::release() {
  std::shared_ptr<Call> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    if (!waiting_.empty()) {
      next = std::move(waiting_.front());
      waiting_.pop_front();
      ++in_flight_;
    }
  }
  // Not from the flow's callback itself: posted, to run on a network thread
  // (this one, when the callback runs on one).
  if (next) net::post(here(), [this, next] { start(next); });
}

void HttpApi::drain() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
}

bool HttpApi::wait_idle(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_for(lock, grace, [&] { return accepted_ == 0; });
}

void MetricsApi::handle(HttpRequest&& req, Reply reply) {
  std::string path(req.target());
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  if (path != "/metrics") return reply(error_response(http::status::not_found, "the monitoring port serves /metrics only"));
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return reply(error_response(http::status::method_not_allowed, "GET /metrics"));
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.body() = metrics_.render(transport_);
  res.prepare_payload();
  reply(std::move(res));
}

}  // namespace docflow::serve
