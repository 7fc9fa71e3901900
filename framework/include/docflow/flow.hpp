#pragma once
// A flow: executors loaded from plugins, wired as a DAG, run on a Boost.Asio
// thread pool. Each executor replica has its own queue (never two threads
// in it at once; the thread is not fixed: a request usually goes on to the
// next executor on the thread that finished the previous one); different
// executors work on different requests at once; `prefetch` bounds the
// requests in flight; the order of requests is kept at every executor's
// input and at the output.
//
// Embedding, as Jina's Flow().add(...).post(...):
//
//   docflow::Flow flow = docflow::Flow::load("flows/index.yml");
//   flow.open();
//   docarray::DocumentArray out = flow.post("/index", docs);
//   flow.close();
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "docflow/checkpoint.hpp"
#include "docflow/process_group.hpp"
#include "docflow/executor.hpp"
#include "docflow/flow_config.hpp"
#include "docflow/flow_graph.hpp"
#include "docflow/plugin_registry.hpp"

namespace docflow {

struct Response {
  Request request;           // the documents as they left the flow
  std::exception_ptr error;  // set when the request failed
};

// How a served request travels (Flow::post with options).
struct PostOptions {
  // Jina's target_executor: when set, only these executors handle the
  // request; the others pass it through untouched.
  std::shared_ptr<const std::vector<std::string>> only_executors;
  // The request's local executors run on the flow's own threads, never on
  // the thread that happens to carry it (by default a light executor, one
  // that has taken microseconds, runs on the poster's thread or on a remote
  // executor's I/O thread). A gateway with timeout_send sets it: its
  // network thread, busy with an executor that turned slow, could not send
  // the 504 when the time is up.
  bool on_flow_threads = false;
};

// One executor replica's work on one request, for metrics: called on the
// pool thread right after the handler returned or threw.
struct ExecutorSample {
  const std::string& executor;
  const std::string& endpoint;
  double seconds;
  std::size_t documents;
  bool failed;
};

struct RunStats {
  std::uint64_t requests = 0;
  std::uint64_t documents = 0;
  std::uint64_t epochs = 0;
  double seconds = 0;         // the whole run
  double source_seconds = 0;  // inside the source's next(): producing data
};

class Flow {
 public:
  // Parses the file, loads plugins from its search path, validates the
  // executors' parameters and the graph. Throws ConfigError.
  static Flow load(const std::string& path, const std::vector<Override>& overrides = {});
  static Flow from_config(FlowConfig config);

  Flow();  // an empty flow, to build in code with add()
  Flow(Flow&&) noexcept;
  Flow& operator=(Flow&&) noexcept;
  ~Flow();  // closes the flow if it is open (errors are logged)

  // Appends an executor; `needs` defaults to the previous executor.
  Flow& add(const std::string& uses, const std::string& name = "", docarray::Value with = {},
            std::vector<std::string> needs = {}, int replicas = 1);
  // Extra plugin search paths for add()-built flows (before open()).
  Flow& plugin_path(const std::string& path);

  const FlowConfig& config() const;
  // After open(): each executor (in the flow's order) with the endpoints it
  // binds ("*": every endpoint).
  std::vector<std::pair<std::string, std::vector<std::string>>> executor_endpoints() const;
  const FlowGraph& graph() const;
  const PluginRegistry& plugins() const;

  // Creates every executor (in topological order, so that publishers of
  // shared resources open first) and opens it; on failure closes those
  // already opened and throws. Each executor gets `workspace/NAME`.
  void open(const std::filesystem::path& workspace = {}, Logger* logger = nullptr);
  // Training checkpoints: with the flow's `checkpoints: N` > 0, run() saves
  // every executor's state in `dir` at each epoch barrier (before open()).
  void enable_checkpoints(const std::filesystem::path& dir);
  // Continues from `checkpoint` (before open()): executors open with
  // `resuming` set, then load their state; the run folder's *.jsonl logs are
  // cut back to their sizes at the checkpoint.
  void resume_from(const Checkpoint& checkpoint);
  bool is_open() const;
  // Runs as one rank of a distributed run (before open()): every executor's
  // context carries `group`. Only rank 0 should enable checkpoints (the
  // state is the same on every rank); on another rank resume_from() loads
  // rank 0's checkpoint and leaves that rank's own logs as they are.
  void join_group(std::shared_ptr<ProcessGroup> group);
  // Serving (before open()): a failure answers its own request with the
  // executor's error and the flow goes on, instead of stopping the flow.
  void isolate_failures(bool on = true);
  // Sees every executor call (before open()); for a gateway's metrics.
  void observe_executors(std::function<void(const ExecutorSample&)> observer);

  // Jina's post(): sends documents to `endpoint`, returns what leaves the
  // flow. Throws the executor's failure.
  docarray::DocumentArray post(const std::string& endpoint, docarray::DocumentArray docs,
                               docarray::Value parameters = {});
  // The same with a callback per response, called in posting order from a
  // pool thread. Blocks only while `prefetch` requests are in flight.
  void post(const std::string& endpoint, docarray::DocumentArray docs, docarray::Value parameters,
            std::function<void(Response)> on_response);
  void post(Request request, std::function<void(Response)> on_response, const PostOptions& options);
  // Sends a stream event (end of an epoch, end of the stream) through the
  // flow after every request posted before it, as a source's events go;
  // `on_done` hears when every executor has seen it (with the failure, if
  // one failed). For executors served alone (`flow executor`), whose
  // events come from a batch run elsewhere.
  void post_event(const Event& event, std::function<void(Response)> on_done);
  // Waits until every posted request has been answered.
  void wait();

  // A batch run: pulls the flow's source until its stream ends, sending the
  // end-of-epoch and end-of-stream events through the graph after the data.
  // `on_output` sees every request that leaves the flow, in order. The first
  // failure stops the run and is thrown (an ExecutorError); request_stop()
  // (Ctrl-C) stops it the same way.
  RunStats run(std::function<void(const Request&)> on_output = {});
  void request_stop();

  // The flow's shared resources (what executors published), for a program
  // that embeds the flow and wants, say, the model a trainer updated.
  SharedRegistry& shared_resources();

  // Closes every opened executor (reverse topological order). Throws the
  // first close() failure after closing all of them.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace docflow
