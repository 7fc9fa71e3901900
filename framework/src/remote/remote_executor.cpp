#include "remote_executor.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "../serve/error_answer.hpp"
#include "../serve/event_wire.hpp"
#include "../serve/flow_address.hpp"
#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docflow/error.hpp"

namespace docflow {
namespace {

constexpr int kDownMs = 5000;
// Requests written ahead of their answers on one connection: what the
// server reads ahead (ServerLimits::pipeline); more wait here.
constexpr std::size_t kInFlight = 16;

}  // namespace

// The connections from one io thread to every address, used on that thread
// only. Closed there when the executor closes, or by the thread itself when
// its io_context stops first (a gateway stopped before its flow is closed).
struct RemoteExecutor::Link {
  std::weak_ptr<IoRunner> runner;  // not kept alive: its exit hook closes this
  const IoRunner* key = nullptr;
  boost::asio::io_context* io = nullptr;
  std::vector<std::shared_ptr<remote::PipelinedConnection>> connections;  // by address
  std::atomic<bool> shut{false};
  std::promise<void> shut_done;
  std::shared_future<void> closed = shut_done.get_future().share();

  // Every request on it fails with `why`; later attempts on it fail too.
  // The first call only; on the link's thread, or once no thread runs it.
  void close(const std::string& why) {
    if (shut.exchange(true)) return;
    std::vector<std::shared_ptr<remote::PipelinedConnection>> all;
    all.swap(connections);
    for (auto& c : all)
      if (c) c->close(why);
    shut_done.set_value();
  }
};

RemoteExecutor::RemoteExecutor(ExecutorContext context, RemoteOptions options)
    : Executor(std::move(context)), options_(std::move(options)) {
  options_.timeout_ready_ms = limit_ms(options_.timeout_ready_ms);
  options_.timeout_send_ms = limit_ms(options_.timeout_send_ms);
  const std::size_t n = options_.addresses.size();
  const std::size_t own = static_cast<std::size_t>(this->context().replica_id) % std::max<std::size_t>(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const serve::FlowAddress parsed = serve::parse_flow_address(options_.addresses[(own + i) % n]);
    Address& a = addresses_.emplace_back();
    a.url = parsed.url;
    a.host = parsed.host;
    a.port = parsed.port;
  }
  io_thread_ = remote::SharedIoThread::get();
}

RemoteExecutor::~RemoteExecutor() { stop_io(); }

void RemoteExecutor::close() { stop_io(); }

void RemoteExecutor::stop_io() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  // The runtime closes an executor with nothing in flight; whatever a
  // connection still holds fails with this. Each link closes on its own
  // thread, where its sockets and timers live: what runs there after this
  // (the handlers of the operations the close cancelled) holds the
  // connections itself, never this executor.
  const std::string why = "the remote executor " + name() + " is closing";
  std::vector<std::shared_ptr<Link>> links;
  {
    std::lock_guard<std::mutex> lock(links_mu_);
    links.swap(links_);
  }
  for (auto& link : links) {
    std::shared_ptr<IoRunner> runner = link->runner.lock();
    if (!runner) continue;  // its thread has ended, and closed the link as it did
    if (runner->on_this_thread()) {
      link->close(why);
    } else {
      // Run there; or, if its io_context stops before the post runs, by
      // the exit hook: either way `closed` comes.
      boost::asio::post(runner->io(), [link, why] { link->close(why); });
      runner.reset();  // its owner may be letting it go meanwhile
      link->closed.wait();
      runner = link->runner.lock();
    }
    if (runner) runner->forget(link.get());
  }
}

std::shared_ptr<RemoteExecutor::Link> RemoteExecutor::link_here() {
  IoRunner* here = IoRunner::current();
  if (!here) return nullptr;
  std::lock_guard<std::mutex> lock(links_mu_);
  for (const auto& l : links_)
    if (l->key == here && !l->runner.expired()) return l;
  // Links of threads that have ended were closed by them.
  links_.erase(std::remove_if(links_.begin(), links_.end(), [](const auto& l) { return l->runner.expired(); }), links_.end());
  auto link = std::make_shared<Link>();
  link->runner = here->shared_from_this();
  link->key = here;
  link->io = &here->io();
  link->connections.resize(addresses_.size());
  // Running on `here`, so its exit hooks have not run: this one will.
  here->at_exit(link.get(), [link, why = "the io thread that sent to the remote executor " + name() + " stopped"] {
    link->close(why);
  });
  links_.push_back(link);
  return link;
}

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
        // Called synchronously (a shard among local ones): the same path, waited for.
        for (const auto& e : endpoints)
          on(e, [this](Request& r) {
            std::promise<void> answered;
            handle_async(r, [&](std::exception_ptr error) {
              if (error) answered.set_exception(error);
              else answered.set_value();
            });
            answered.get_future().get();
          });
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

struct RemoteExecutor::Call {
  Request* request;
  std::string body;  // the envelope, encoded once for every address tried
  Done done;
  std::shared_ptr<Link> link;      // the io thread it is sent from
  std::vector<std::size_t> order;  // addresses to try, in turn
  std::size_t at = 0;              // the address in `order` it goes to now
  bool reconnected = false;        // a new connection to the same address was tried
  std::string tried;               // what the addresses before it said
};

namespace {
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void RemoteExecutor::handle_async(Request& request, Done done) {
  if (!handles(request.endpoint)) return done(nullptr);  // not bound there: passes through, as handle() does
  auto call = std::make_shared<Call>();
  call->request = &request;
  call->done = std::move(done);
  docarray::Value fields = docarray::Value::map();
  fields["exec_endpoint"] = request.endpoint;
  if (!request.parameters.is_null()) fields["parameters"] = request.parameters;
  call->body = docarray::to_msgpack_envelope(fields, request.docs);
  // On an io thread (the gateway's, or the one that brought the answer of
  // a remote executor before this one): sent from here, no hand-off.
  if ((call->link = link_here())) return start(call);
  boost::asio::post(io_thread_->io(), [this, call] {
    call->link = link_here();  // the shared io thread's
    start(call);
  });
}

void RemoteExecutor::start(const std::shared_ptr<Call>& call) {
  // Replicas that are up first (this replica's own before the others),
  // then the ones marked down, in case they are back.
  const std::int64_t now = now_ns();
  for (std::size_t i = 0; i < addresses_.size(); ++i)
    if (addresses_[i].down_until.load(std::memory_order_relaxed) <= now) call->order.push_back(i);
  for (std::size_t i = 0; i < addresses_.size(); ++i)
    if (addresses_[i].down_until.load(std::memory_order_relaxed) > now) call->order.push_back(i);
  attempt(call);
}

void RemoteExecutor::attempt(const std::shared_ptr<Call>& call) {
  Link& link = *call->link;
  if (stopping_)
    return call->done(std::make_exception_ptr(Error("the remote executor " + name() + " is closing")));
  if (link.shut)
    return call->done(std::make_exception_ptr(Error("the io thread that sent to the remote executor " + name() + " stopped")));
  if (call->at >= call->order.size())
    return call->done(std::make_exception_ptr(Error("no replica of the remote executor answered: " + call->tried)));
  const std::size_t index = call->order[call->at];
  Address& a = addresses_[index];
  std::shared_ptr<remote::PipelinedConnection>& connection = link.connections[index];
  if (!connection)
    connection = std::make_shared<remote::PipelinedConnection>(*link.io, a.host, a.port, options_.timeout_send_ms, kInFlight);
  remote::http::request<remote::http::string_body> req{remote::http::verb::post, "/post", 11};
  req.set(remote::http::field::host, a.host + ":" + a.port);
  req.set(remote::http::field::user_agent, "docflow-remote-executor");
  if (!options_.token.empty()) req.set(remote::http::field::authorization, "Bearer " + options_.token);
  req.set(remote::http::field::content_type, "application/x-msgpack");
  req.set(remote::http::field::accept, "application/x-msgpack");
  req.keep_alive(true);
  req.body() = call->body;
  req.prepare_payload();
  connection->send(std::move(req), [this, call, index](remote::Answer answer) { answered(call, index, std::move(answer)); });
}

void RemoteExecutor::answered(const std::shared_ptr<Call>& call, std::size_t address, remote::Answer answer) {
  Request& request = *call->request;
  Address& a = addresses_[address];
  if (answer.status == 200) {
    docarray::Envelope env;
    try {
      env = docarray::parse_msgpack_envelope(answer.body);
    } catch (const docarray::Error& e) {
      return call->done(std::make_exception_ptr(Error("at " + a.url + ": got an answer that does not parse: " + e.what())));
    }
    request.docs = std::move(env.docs);
    if (const docarray::Value* p = env.fields.find("parameters"); p && !p->is_null()) request.parameters = *p;
    a.down_until.store(0, std::memory_order_relaxed);
    return call->done(nullptr);
  }
  // Out of time: it may still be running there; sending it again would
  // only wait again (Jina's timeout_send fails the request).
  if (answer.timed_out) return call->done(std::make_exception_ptr(Error("at " + a.url + ": " + answer.error)));
  if (answer.status != 0 && answer.status != 503)
    return call->done(std::make_exception_ptr(Error("at " + a.url + ": " + request.endpoint + " failed with HTTP " +
                                                    std::to_string(answer.status) + ": " +
                                                    serve::describe_error_answer(answer.body, true))));
  // A kept-alive connection the server closed while idle looks like a lost
  // one: once more on a new connection to the same address first.
  if (answer.status == 0 && !call->reconnected) {
    call->reconnected = true;
    return attempt(call);
  }
  // Unreachable or overloaded: the next replica gets the request.
  const std::string why = answer.status == 503 ? "HTTP 503: " + serve::describe_error_answer(answer.body, true) : answer.error;
  call->tried += (call->tried.empty() ? "" : "; ") + a.url + ": " + why;
  a.down_until.store(now_ns() + std::int64_t{kDownMs} * 1000000, std::memory_order_relaxed);
  ++call->at;
  call->reconnected = false;
  attempt(call);
}

}  // namespace docflow
