#pragma once
// The executor API. An executor binds handlers to endpoints, receives a
// batch of documents with the request's parameters, and changes or replaces
// the batch. MediaPipe's contract: an instance is never called from two
// threads at once, but the thread is not fixed. open(), handlers and events,
// close(); if open() throws nothing else is called, and close() always
// follows a successful open().
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "docarray/document.hpp"
#include "docflow/logger.hpp"
#include "docflow/params.hpp"
#include "docflow/process_group.hpp"
#include "docflow/shared_registry.hpp"

namespace docflow {

// One batch of documents on its way through the flow.
struct Request {
  std::string endpoint;        // "/index", "/train", ...
  docarray::DocumentArray docs;
  docarray::Value parameters;  // the request's parameters (a map or null)
};

// Stream events. They reach every executor after all the data that precedes
// them, in order, through every branch.
struct Event {
  enum class Kind { EndOfEpoch, EndOfStream };
  Kind kind;
  int epoch = 0;  // the epoch that ended (0-based)
  std::string endpoint;
};

// What the runtime tells an executor about itself (Jina's runtime_args).
struct ExecutorContext {
  std::string name;              // the executor's name in the flow
  int replica_id = 0;
  int replicas = 1;
  std::filesystem::path workspace;  // a folder of its own inside the run folder
  std::filesystem::path run_dir;    // the run folder (metrics, reports, artifacts go here)
  Params params;                 // `with:` checked against the schema, with defaults
  SharedRegistry* registry = nullptr;
  Logger* logger = nullptr;
  // True when the run continues from a training checkpoint (`flow run
  // --resume`): load_state() follows open(), so open() may skip what the
  // state replaces (an evaluation before training, say).
  bool resuming = false;
  // Ends a batch run cleanly: the source is not asked for more, the events
  // still reach every executor, and the run finishes (EarlyStopping uses it).
  std::function<void()> end_stream;
  // The ranks of a distributed run (`flow run --nproc-per-node N`, torchrun):
  // rank, world size, local rank and the collectives. Null means a single
  // process; Executor::group() then answers with a world of one.
  std::shared_ptr<ProcessGroup> process_group;
};

class Executor {
 public:
  using Handler = std::function<void(Request&)>;

  explicit Executor(ExecutorContext context);
  virtual ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  virtual void open() {}
  virtual void close() {}
  virtual void on_event(const Event&) {}

  // Training checkpoints (see checkpoint.hpp). save_state() writes what the
  // executor needs to continue after a crash into `dir`, its own empty
  // folder; the runtime calls it at an epoch barrier, with no request in
  // flight. load_state() reads it back after open(). A stateless executor
  // keeps the defaults.
  virtual void save_state(const std::filesystem::path& /*dir*/) {}
  virtual void load_state(const std::filesystem::path& /*dir*/) {}

  // Runs the handler bound to request.endpoint, or the default one; a
  // request no handler is bound for passes through untouched.
  void handle(Request& request);

  // Executors whose work happens elsewhere (a remote service) answer later:
  // handle_async() starts the request and returns at once, and `done` is
  // called exactly once, from any thread, when `request` holds the answer
  // (null) or with the failure. The runtime then keeps many requests in
  // flight on one instance without a thread waiting for each. It is called
  // as handle() is, never from two threads at once; `request` stays valid
  // until `done` runs. The default runs handle() and calls `done`.
  using Done = std::function<void(std::exception_ptr)>;
  virtual bool answers_later() const { return false; }
  virtual void handle_async(Request& request, Done done);
  bool handles(const std::string& endpoint) const;
  // The endpoints bound, sorted ("*" for the default handler).
  std::vector<std::string> endpoints() const;

  const ExecutorContext& context() const { return context_; }
  const std::string& name() const { return context_.name; }
  const Params& params() const { return context_.params; }
  SharedRegistry& registry() const;
  Logger& log() const;
  ProcessGroup& group() const;

 protected:
  // Binds `handler` to `endpoint`; "*" binds the default for every endpoint.
  void on(const std::string& endpoint, Handler handler);

 private:
  ExecutorContext context_;
  std::map<std::string, Handler> handlers_;
};

// A source produces the requests of a batch run (a reader). The runtime pulls
// next() whenever fewer than `prefetch` requests are in flight.
class Source : public Executor {
 public:
  struct Item {
    enum class Kind { Data, EndOfEpoch } kind = Kind::Data;
    docarray::DocumentArray docs;
    int epoch = 0;
  };
  using Executor::Executor;
  ~Source() override;  // out of line: the key function keeps one typeinfo, in libdocflow
  // The next batch or end-of-epoch marker; nullopt at the end of the stream.
  virtual std::optional<Item> next() = 0;
  // The endpoint the source's requests are posted to.
  virtual std::string endpoint() const { return "/index"; }
  // A source's position is always state: one that cannot save it cannot be
  // checkpointed, and says so (rather than restarting from the beginning).
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;
};

}  // namespace docflow
