#include "docflow/flow.hpp"
#include "remote/remote_executor.hpp"
#include "isolate/isolated_executor.hpp"
#include "sharded_executor.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "docflow/filter.hpp"
#include "docflow/merge.hpp"

namespace docflow {
namespace {

using Pool = boost::asio::thread_pool;

struct Message {
  std::uint64_t seq = 0;
  bool is_event = false;
  Request request;
  Event event;
  // Serving: the failure this request met (the executors after it pass it
  // through) and the executors it is for (null: all).
  std::exception_ptr error;
  std::shared_ptr<const std::vector<std::string>> only;
  bool on_flow_threads = false;  // PostOptions::on_flow_threads
};
// Messages travel by pointer: a request passes five hand-offs at every
// executor, and moving a Request (its DocumentArray, its parameters'
// variant) each time was a tenth of a no-op pipeline's time.
using MessagePtr = std::unique_ptr<Message>;

// An event on its way through a node's replicas: every replica sees it, the
// last one to finish passes it on.
struct EventVisit {
  MessagePtr msg;
  std::atomic<std::size_t> remaining{0};
  // Serving (post_event): the first replica's failure travels with the
  // event, as a request's does, instead of failing the whole flow.
  std::mutex mu;
  std::exception_ptr first_error;
};

// One unit of work for one replica: a request, or its share of an event.
struct Task {
  MessagePtr msg;                      // a request
  std::shared_ptr<EventVisit> visit;   // or an event (msg unused)
};

// One replica's queue. Its tasks run one at a time, in the order they were
// queued (under the node's `mu`, in sequence order), as on an Asio strand;
// but the runtime chooses the thread. A thread that finishes a task keeps
// the lane while it has more (the message goes on to the next executor on
// the pool), and otherwise carries the message on itself: a task queued on
// an idle lane by a pool thread (any thread, for a light executor: below)
// runs on that thread, there and then, instead of waking another one
// (run_lane, start_lanes, complete). Of the
// three policies measured (always carry the message on, never, this one),
// this one was the only one at GStreamer's rate or better on every run of
// bench_pipeline (bench/RESULTS.md).
struct Lane {
  std::deque<Task> queue;
  bool owned = false;  // a thread runs the head task or is about to
  bool keep = false;   // the owner goes on with the next task itself (run_lane)
  std::uint32_t calls = 0;  // requests handled (by the owner only): every kTimeEvery-th is timed
};

// A local executor whose requests take a few microseconds (a router, a
// filter, a no-op) costs less than the hand-off to another thread: a futex
// wake-up is 15-25 us here, and on a served flow the gateway's network
// thread hands a request to the pool and the pool hands the answer back.
// Such an executor is "light": its lane may run on any thread that queued
// it (a gateway or remote executor's I/O thread, a source's thread), as
// GStreamer runs elements on the pushing thread between queues. Light is
// measured, not declared: every kTimeEvery-th request of a replica is timed
// and a moving mean kept (weight 1/4 to the new sample); an executor is
// light once that mean is under kLightNs. It starts unknown (heavy), so a
// new flow's first requests go to the pool as before.
constexpr std::uint32_t kTimeEvery = 4;
constexpr std::uint32_t kLightNs = 20000;
constexpr std::uint32_t kUnknownCost = 0xffffffffu;

// The per-vertex state of the runtime. `mu` guards the join, the in-order
// dispatch and the lanes; an executor is only touched by its lane's owner.
struct Node {
  std::size_t vertex = 0;
  std::string name;
  std::vector<std::size_t> preds;
  std::vector<std::size_t> succs;  // where a message goes next: the successors, or the output for a sink
  std::vector<std::shared_ptr<Executor>> replicas;
  std::deque<Lane> lanes;  // one per replica (a deque: a Lane never moves)
  bool sends = false;      // remote: handle_async only sends, the answer comes later
  // The moving mean of a request's time in a local executor, in ns (any
  // replica's; kUnknownCost before the first). Relaxed: a lost update only
  // delays the mean by a sample.
  std::atomic<std::uint32_t> cost_ns{kUnknownCost};
  bool light() const { return cost_ns.load(std::memory_order_relaxed) < kLightNs; }
  void note_cost(std::chrono::steady_clock::duration d) {
    const auto ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    const std::uint64_t sample = std::min<std::uint64_t>(ns, kUnknownCost - 1);
    const std::uint32_t old = cost_ns.load(std::memory_order_relaxed);
    cost_ns.store(static_cast<std::uint32_t>(old == kUnknownCost ? sample : (3 * std::uint64_t{old} + sample) / 4),
                  std::memory_order_relaxed);
  }
  std::optional<Filter> when;
  bool is_source = false;

  std::mutex mu;
  std::map<std::uint64_t, std::vector<MessagePtr>> arriving;  // joins waiting for other branches
  std::map<std::uint64_t, MessagePtr> ready;                   // complete, waiting for their turn
  std::uint64_t next_seq = 0;
  std::size_t in_flight = 0;
  bool event_in_flight = false;
  std::size_t round_robin = 0;
  // The output node: answers are taken in order under `mu`, but two
  // threads can then run their callbacks at once; each waits for its turn
  // (taken at collect) so that callbacks run in posting order.
  std::uint64_t turns_taken = 0, turn_now = 0;
  std::mutex turn_mu;
  std::condition_variable turn_cv;
};

// A message released by a node's in-order gate, to be run once the node's
// lock is dropped.
struct Dispatch {
  enum class Kind { Data, Event, Output } kind;
  MessagePtr msg;
  std::size_t replica = 0;  // Data: the replica; Output: the answer's turn
};
using Dispatches = boost::container::small_vector<Dispatch, 4>;
// Lanes that became owned and need a thread: the replica, and whether its
// first task is an event (an executor light on requests may do heavy work
// at an epoch's end: events run inline only where heavy work may).
struct LaneStart {
  std::size_t replica = 0;
  bool event = false;
};
using LaneStarts = boost::container::small_vector<LaneStart, 4>;

// Where a lane may run on the thread that queued it: a local executor's
// on its flow's own pool threads, and on any other thread only when it is
// light (the source's thread and the gateway's and remote executors' I/O
// threads go back to their work), a remote executor's anywhere (it only
// encodes and sends); and only so deep
// (a callback that posts the next request would otherwise recurse without
// end; an output callback stops it altogether, see emit_output).
struct InlineLanes {
  const void* flow = nullptr;  // the flow whose pool thread this is
  int depth = 0;               // lanes nested on this thread's stack
};
thread_local InlineLanes inline_lanes;
constexpr int kMaxInlineDepth = 8;

MessagePtr join(std::vector<MessagePtr>& parts) {
  MessagePtr out = std::move(parts.front());
  if (out->is_event) return out;
  for (std::size_t i = 1; i < parts.size(); ++i)
    if (parts[i]->error && !out->error) out->error = parts[i]->error;
  for (std::size_t i = 1; i < parts.size(); ++i) merge_arrays(out->request.docs, parts[i]->request.docs);
  return out;
}

}  // namespace

struct Flow::Impl {
  FlowConfig config;
  std::unique_ptr<PluginRegistry> registry = std::make_unique<PluginRegistry>();
  std::vector<std::string> extra_plugin_paths;
  std::unique_ptr<FlowGraph> graph;
  bool plugins_loaded = false;

  // Open state.
  Logger own_logger;
  Logger* logger = &own_logger;
  SharedRegistry shared;
  std::unique_ptr<Pool> pool;
  std::vector<std::unique_ptr<Node>> nodes;  // per vertex; the last one is the output
  bool open = false;
  std::vector<std::pair<Node*, std::size_t>> opened;  // (node, replica), in open order

  // Request accounting.
  std::mutex mu;
  std::condition_variable cv;
  // The source waiting for a free prefetch slot waits on a variable of its
  // own: on `cv`, every answer's accounting woke it a second time for
  // nothing (bench_pipeline, 1M requests: 713k -> 622k context switches,
  // `perf stat`, GStreamer's run included; the rate moved within noise).
  std::condition_variable room_cv;
  std::uint64_t next_seq = 0;
  // Data requests: `released` counts those whose prefetch slot is free again
  // (just before their callback runs, so a callback may post the next one),
  // `answered` those whose callback has returned.
  std::uint64_t injected = 0, released = 0, answered = 0;
  bool isolate = false;  // serving: a failure answers its request only
  std::function<void(const ExecutorSample&)> observer;
  // Hot-path state is atomic: every hop of every request touches it, and a
  // shared mutex there serialises the pool threads.
  std::atomic<std::size_t> outstanding_tasks{0};
  std::atomic<bool> has_failed{false};
  std::atomic<bool> end_requested{false};
  std::exception_ptr failure;
  bool stopping = false;
  bool stream_ended = false;
  std::map<std::uint64_t, std::function<void(Response)>> callbacks;
  std::function<void(const Request&)> on_output;
  RunStats stats;

  // Training checkpoints.
  std::filesystem::path run_dir;
  std::unique_ptr<CheckpointStore> checkpoints;
  std::optional<Checkpoint> resume;
  std::shared_ptr<ProcessGroup> group;  // null: one process

  std::filesystem::path state_dir(const std::filesystem::path& root, const Node& node, std::size_t replica) const {
    std::filesystem::path d = root / "executors" / node.name;
    return node.replicas.size() > 1 ? d / ("replica-" + std::to_string(replica)) : d;
  }

  // The run folder's append-only logs (metrics.jsonl, steps.jsonl, ...):
  // their sizes go into a checkpoint so that a resume cuts them back.
  std::map<std::string, std::uintmax_t> run_file_sizes() const {
    std::map<std::string, std::uintmax_t> sizes;
    if (run_dir.empty() || !std::filesystem::is_directory(run_dir)) return sizes;
    for (const auto& e : std::filesystem::directory_iterator(run_dir))
      if (e.is_regular_file() && e.path().extension() == ".jsonl") sizes[e.path().filename().string()] = e.file_size();
    return sizes;
  }

  // At an epoch barrier: nothing is in flight, every executor is idle.
  void snapshot(int epoch) {
    const std::filesystem::path dir = checkpoints->begin(epoch);
    for (auto& [node, r] : opened) {
      const std::filesystem::path d = state_dir(dir, *node, r);
      try {
        std::filesystem::create_directories(d);
        node->replicas[r]->save_state(d);
      } catch (const std::exception& e) {
        throw ExecutorError(node->name, "", std::string("saving its state for the training checkpoint failed: ") + e.what());
      }
    }
    Checkpoint c = checkpoints->commit(epoch, run_file_sizes());
    logger->info("flow", "training checkpoint after epoch " + std::to_string(epoch + 1) + ": " + c.path.string());
  }

  // After every executor opened: the logs first, then each executor's state.
  void restore() {
    if (!run_dir.empty() && (!group || group->rank() == 0)) {
      for (const auto& [file, size] : resume->run_files) {
        const std::filesystem::path p = run_dir / file;
        if (std::filesystem::exists(p) && std::filesystem::file_size(p) > size) std::filesystem::resize_file(p, size);
      }
      for (const auto& e : std::filesystem::directory_iterator(run_dir))
        if (e.is_regular_file() && e.path().extension() == ".jsonl" && !resume->run_files.count(e.path().filename().string()))
          std::filesystem::resize_file(e.path(), 0);  // born after the checkpoint
    }
    for (auto& [node, r] : opened) {
      const std::filesystem::path d = state_dir(resume->path, *node, r);
      try {
        node->replicas[r]->load_state(d);
      } catch (const std::exception& e) {
        throw ExecutorError(node->name, "", "cannot resume from " + resume->path.string() + ": " + e.what());
      }
    }
    logger->info("flow", "resumed from the training checkpoint after epoch " + std::to_string(resume->epoch + 1) + " (" +
                             resume->path.string() + ")");
  }

  // The executor in a child `flow serve` of a flow of its own: the same
  // parameters, environment and plugins, its run folder in its workspace.
  std::shared_ptr<Executor> isolated(const ExecutorConfig& cfg, const ExecutorContext& part) {
    const std::filesystem::path dir = std::filesystem::absolute(part.workspace / "process");
    FlowConfig one;
    one.name = cfg.name;
    one.workspace = (dir / "runs").string();
    one.prefetch = config.prefetch;
    std::vector<std::string> entries = config.plugins;
    entries.insert(entries.end(), extra_plugin_paths.begin(), extra_plugin_paths.end());
    const std::vector<std::string> paths = PluginRegistry::search_path(entries, config.dir);
    for (std::size_t i = 0; i < entries.size(); ++i) one.plugins.push_back(std::filesystem::absolute(paths[i]).string());
    one.executors.push_back(standalone(cfg));
    IsolationOptions o;
    o.flow_yaml = "# executor '" + cfg.name + "' of flow " + config.name + ", isolated in a process of its own\n" + to_yaml(one);
    o.dir = dir;
    o.restarts = cfg.restarts;
    o.timeout_ready_ms = cfg.timeout_ready_ms;
    o.timeout_send_ms = cfg.timeout_send_ms;
    return std::make_shared<IsolatedExecutor>(part, std::move(o));
  }

  void load_plugins() {
    if (plugins_loaded) return;
    std::vector<std::string> explicit_files;
    std::vector<std::string> entries = config.plugins;
    entries.insert(entries.end(), extra_plugin_paths.begin(), extra_plugin_paths.end());
    std::vector<std::string> paths = PluginRegistry::search_path(entries, config.dir);
    for (std::size_t i = 0; i < entries.size(); ++i) explicit_files.push_back(paths[i]);
    try {
      registry->load(paths, explicit_files);
    } catch (const PluginError& e) {
      // A plugin the flow names itself: point at the flow's `plugins:`.
      if (config.plugins_where.line) throw ConfigError(config.plugins_where, e.what());
      throw;
    }
    plugins_loaded = true;
  }

  void prepare() {
    load_plugins();
    validate_flow(config, *registry);
    graph = std::make_unique<FlowGraph>(config);
  }

  Node& output() { return *nodes.back(); }

  // --- failure and accounting --------------------------------------------

  // The first failure wins; every request still waiting for an answer gets it.
  void fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure) failure = e;
      has_failed = true;
      cv.notify_all();
      room_cv.notify_all();
    }
    fail_pending_callbacks();
  }

  bool failed() const { return has_failed.load(std::memory_order_acquire); }

  void task_started() { outstanding_tasks.fetch_add(1, std::memory_order_relaxed); }

  void task_finished() {
    if (outstanding_tasks.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu);  // drain() may be waiting for zero
      cv.notify_all();
    }
  }

  // --- message flow --------------------------------------------------------

  void inject(MessagePtr msg) {
    // From the gateway to its successors (a source's requests enter after it).
    forward(nodes[0]->succs, std::move(msg));
  }

  // Branches other than the last start on other threads: only the last
  // may run on this one (it would hold the others back until it is done).
  void forward(const std::vector<std::size_t>& targets, MessagePtr msg, bool may_run_here = true) {
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (i + 1 == targets.size()) deliver(*nodes[targets[i]], std::move(msg), may_run_here);
      else deliver(*nodes[targets[i]], std::make_unique<Message>(*msg), /*may_run_here=*/false);
    }
  }

  void deliver(Node& node, MessagePtr msg, bool may_run_here) {
    Dispatches ready;
    LaneStarts starts;
    const bool on_flow_threads = msg->on_flow_threads;
    {
      std::lock_guard<std::mutex> lock(node.mu);
      std::uint64_t seq = msg->seq;
      if (node.preds.size() <= 1) {
        node.ready.emplace(seq, std::move(msg));
      } else {
        auto& parts = node.arriving[seq];
        parts.push_back(std::move(msg));
        if (parts.size() == node.preds.size()) {
          node.ready.emplace(seq, join(parts));
          node.arriving.erase(seq);
        }
      }
      collect(node, ready);
      queue_in_order(node, ready, starts);
    }
    emit_outputs(node, ready);
    start_lanes(node, starts, may_run_here, on_flow_threads);
  }

  // Under node.mu: takes the next requests in sequence order. An event waits
  // until everything before it is done, and nothing passes it until it is done.
  void collect(Node& node, Dispatches& out) {
    while (!node.ready.empty() && node.ready.begin()->first == node.next_seq) {
      MessagePtr& head = node.ready.begin()->second;
      if (node.event_in_flight || (head->is_event && node.in_flight > 0)) break;
      Dispatch d{Dispatch::Kind::Data, std::move(head), 0};
      node.ready.erase(node.ready.begin());
      ++node.next_seq;
      ++node.in_flight;
      if (&node == nodes.back().get()) {
        d.kind = Dispatch::Kind::Output;
        d.replica = node.turns_taken++;
      } else if (d.msg->is_event) {
        d.kind = Dispatch::Kind::Event;
        node.event_in_flight = true;
      } else {
        d.replica = node.round_robin++ % node.replicas.size();
      }
      out.push_back(std::move(d));
    }
  }

  // Under node.mu, right after collect(): queues data and events on their
  // replicas' lanes. Queueing must happen under the lock: two threads that
  // each collected in order and queued after unlocking could queue 32
  // before 31 on a replica (seen once in CI with Asio strands: a Recorder
  // after three Sleeper replicas got 33, 31, 32). Lanes that were idle are
  // owned from here on and listed in `starts` for the caller to run once
  // the lock is dropped. What is left in `ready` is output, which emit_outputs()
  // emits after unlocking; its order is kept by the turns collect() numbered.
  void queue_in_order(Node& node, Dispatches& ready, LaneStarts& starts) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < ready.size(); ++i) {
      Dispatch& d = ready[i];
      switch (d.kind) {
        case Dispatch::Kind::Output:
          if (kept != i) ready[kept] = std::move(d);  // never onto itself: a self-move empties a vector
          ++kept;
          break;
        case Dispatch::Kind::Event: {
          auto visit = std::make_shared<EventVisit>();
          visit->msg = std::move(d.msg);
          visit->remaining = node.replicas.size();
          for (std::size_t r = 0; r < node.replicas.size(); ++r) queue_task(node, r, Task{nullptr, visit}, starts);
          break;
        }
        case Dispatch::Kind::Data: queue_task(node, d.replica, Task{std::move(d.msg), nullptr}, starts); break;
      }
    }
    ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(kept), ready.end());
  }

  void emit_outputs(Node& node, Dispatches& ready) {
    for (Dispatch& d : ready) emit_output(node, std::move(d.msg), d.replica);
  }

  // Under node.mu.
  void queue_task(Node& node, std::size_t replica, Task task, LaneStarts& starts) {
    task_started();
    Lane& lane = node.lanes[replica];
    const bool event = task.visit != nullptr;
    lane.queue.push_back(std::move(task));
    if (!lane.owned) {
      lane.owned = true;
      starts.push_back(LaneStart{replica, event});
    }
  }

  // Lanes just owned by queue_task: the first runs on this thread when the
  // caller allows it (it is about to return), there is stack to spare, and
  // this is one of the flow's pool threads (any thread, for a remote
  // executor's lane, it only sends, or a light one); the rest go to the pool.
  // `on_flow_threads`: the message that started them may not run a local
  // executor on a thread other than the pool's (PostOptions).
  void start_lanes(Node& node, const LaneStarts& starts, bool may_run_here, bool on_flow_threads = false) {
    for (std::size_t i = 0; i < starts.size(); ++i) {
      const std::size_t r = starts[i].replica;
      if (i == 0 && may_run_here && inline_lanes.depth < kMaxInlineDepth &&
          (node.sends || inline_lanes.flow == this || (node.light() && !starts[i].event && !on_flow_threads))) {
        run_lane(node, r);
      } else {
        boost::asio::post(*pool, [this, &node, r] {
          inline_lanes.flow = this;
          run_lane(node, r);
        });
      }
    }
  }

  // Runs the tasks of an owned lane, one after the other, for as long as
  // the lane is kept (release_lane_locked): each is done with the executor
  // before its message moves on, so a lane left idle by the last task is
  // free for the others while this thread carries that message onwards.
  void run_lane(Node& node, std::size_t replica) {
    ++inline_lanes.depth;
    struct Depth {
      ~Depth() { --inline_lanes.depth; }
    } depth;
    Lane& lane = node.lanes[replica];
    for (;;) {
      Task task;
      {
        std::lock_guard<std::mutex> lock(node.mu);
        task = std::move(lane.queue.front());
        lane.queue.pop_front();
      }
      if (task.visit) visit_event(node, replica, std::move(task.visit));
      else handle_data(node, replica, std::move(task.msg));
      std::lock_guard<std::mutex> lock(node.mu);
      if (!lane.keep) return;
      lane.keep = false;
    }
  }

  // The task that ran on `replica` is done with the executor. With more
  // tasks queued, this thread keeps the lane and runs the next once it is
  // done here (true; run_lane loops); else the lane is idle. Under node.mu.
  bool release_lane_locked(Node& node, std::size_t replica) {
    Lane& lane = node.lanes[replica];
    if (lane.queue.empty()) {
      lane.owned = false;
      return false;
    }
    return lane.keep = true;
  }

  void release_lane(Node& node, std::size_t replica) {
    std::lock_guard<std::mutex> lock(node.mu);
    release_lane_locked(node, replica);
  }

  static constexpr std::size_t kNoLane = static_cast<std::size_t>(-1);

  void handle_data(Node& node, std::size_t replica, MessagePtr msg) {
    const bool skip = msg->error || (msg->only && std::find(msg->only->begin(), msg->only->end(), node.name) == msg->only->end());
    Executor& ex = *node.replicas[replica];
    if (failed() || skip || !select(node, msg->request)) return finish(node, replica, std::move(msg), nullptr, {});
    if (!ex.answers_later()) {
      const bool timed = node.lanes[replica].calls++ % kTimeEvery == 0;
      const auto t0 = observer || timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
      std::exception_ptr error;
      try {
        ex.handle(msg->request);
      } catch (...) {
        error = std::current_exception();
      }
      if (timed) node.note_cost(std::chrono::steady_clock::now() - t0);
      return finish(node, replica, std::move(msg), error, t0);
    }
    const auto t0 = observer ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    // A remote executor: the request goes out and the lane is free; the
    // answer finishes it on whichever thread it arrives.
    auto held = std::make_shared<MessagePtr>(std::move(msg));
    try {
      ex.handle_async((*held)->request, [this, &node, held, t0](std::exception_ptr error) {
        finish(node, kNoLane, std::move(*held), error, t0);
      });
    } catch (...) {
      release_lane(node, replica);
      return finish(node, kNoLane, std::move(*held), std::current_exception(), t0);
    }
    release_lane(node, replica);
  }

  // After the executor ran (or was skipped: no start time): its failure
  // named, the observer told, the lane it ran on (if any) released, and
  // the message passed on.
  void finish(Node& node, std::size_t lane, MessagePtr msg, std::exception_ptr error,
              std::chrono::steady_clock::time_point t0) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        error = std::make_exception_ptr(ExecutorError(node.name, msg->request.endpoint, e.what()));
      } catch (...) {
        error = std::make_exception_ptr(ExecutorError(node.name, msg->request.endpoint, "unknown exception"));
      }
    }
    if (observer && t0 != std::chrono::steady_clock::time_point())
      observer(ExecutorSample{node.name, msg->request.endpoint,
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                              msg->request.docs.size(), error != nullptr});
    if (error && isolate) msg->error = error;
    else if (error) fail(error);
    complete(node, lane, std::move(msg));
    task_finished();
  }

  // Only the documents that satisfy `when` reach the executor, as in Jina;
  // false when none does (the executor is not called).
  bool select(Node& node, Request& request) {
    if (!node.when) return true;
    docarray::DocumentArray selected;
    for (const auto& d : request.docs)
      if (node.when->matches(d)) selected.append(d);
    request.docs = std::move(selected);
    return !request.docs.empty();
  }

  void visit_event(Node& node, std::size_t replica, std::shared_ptr<EventVisit> visit) {
    if (!failed() && !visit->msg->error) {
      try {
        node.replicas[replica]->on_event(visit->msg->event);
      } catch (const std::exception& e) {
        auto error = std::make_exception_ptr(ExecutorError(node.name, visit->msg->event.endpoint, e.what()));
        if (isolate) {
          std::lock_guard<std::mutex> lock(visit->mu);
          if (!visit->first_error) visit->first_error = error;
        } else {
          fail(error);
        }
      }
    }
    if (visit->remaining.fetch_sub(1) == 1) {
      if (visit->first_error) visit->msg->error = visit->first_error;
      complete(node, replica, std::move(visit->msg));
    } else {
      release_lane(node, replica);
    }
    task_finished();
  }

  // A task is done at `node` (on lane `lane`, or kNoLane for an answer that
  // arrived from the network): the node's gate lets the next ones through,
  // the lane is kept or left idle, and the message goes to the successors:
  // on the pool when this thread keeps the lane, else the last of them
  // (its lane idle) may run right here.
  void complete(Node& node, std::size_t lane, MessagePtr msg) {
    Dispatches ready;
    LaneStarts starts;
    bool kept = false;
    {
      std::lock_guard<std::mutex> lock(node.mu);
      --node.in_flight;
      if (msg->is_event) node.event_in_flight = false;
      collect(node, ready);
      queue_in_order(node, ready, starts);
      kept = lane != kNoLane && release_lane_locked(node, lane);
    }
    emit_outputs(node, ready);
    start_lanes(node, starts, /*may_run_here=*/false);
    if (failed()) return;  // after the first failure nothing moves on
    forward(node.succs, std::move(msg), !kept);
  }
  void emit_output(Node& out, MessagePtr msg, std::uint64_t turn) {
    std::function<void(Response)> callback;
    std::function<void(const Request&)> observer;
    {
      std::lock_guard<std::mutex> lock(mu);
      // A served event (post_event) has a callback too; it takes no slot.
      auto it = callbacks.find(msg->seq);
      if (it != callbacks.end()) {
        callback = std::move(it->second);
        callbacks.erase(it);
      }
      if (!msg->is_event) {
        observer = on_output;
        ++released;  // the slot is free before the callback: it may post the next request
        room_cv.notify_one();  // one source waits (Flow::run, or serving's post)
      }
    }
    {
      // The slot is already free (above): a callback that posts the next
      // request never waits for a later answer's turn.
      std::unique_lock<std::mutex> lock(out.turn_mu);
      out.turn_cv.wait(lock, [&] { return out.turn_now == turn; });
    }
    {
      // The next answer's turn comes when this callback returns or throws
      // (before this thread may run that answer itself, below).
      struct NextTurn {
        Node& out;
        ~NextTurn() {
          {
            std::lock_guard<std::mutex> lock(out.turn_mu);
            ++out.turn_now;
          }
          out.turn_cv.notify_all();
        }
      } next_turn{out};
      // A callback that posts the next request must not carry it through
      // the flow on this stack: its answer would wait here for this
      // callback's turn to end.
      struct NoInline {
        int saved = inline_lanes.depth;
        NoInline() { inline_lanes.depth = kMaxInlineDepth; }
        ~NoInline() { inline_lanes.depth = saved; }
      } no_inline;
      if (observer) observer(msg->request);
      if (callback) callback(Response{std::move(msg->request), msg->error});
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (msg->is_event) {
        if (msg->event.kind == Event::Kind::EndOfStream) stream_ended = true;
        else ++stats.epochs;
      } else {
        ++answered;
      }
      cv.notify_all();
    }
    Dispatches ready;
    LaneStarts none;  // the output has no executor, hence no lanes
    {
      std::lock_guard<std::mutex> lock(out.mu);
      --out.in_flight;
      collect(out, ready);
      queue_in_order(out, ready, none);
    }
    emit_outputs(out, ready);
  }

  // Blocks while `prefetch` requests are in flight; false when the run failed
  // or was stopped.
  bool wait_for_room() {
    std::unique_lock<std::mutex> lock(mu);
    room_cv.wait(lock, [&] { return failure || stopping || injected - released < static_cast<std::uint64_t>(config.prefetch); });
    return !failure && !stopping;
  }

  std::uint64_t take_seq(bool data) {
    std::lock_guard<std::mutex> lock(mu);
    if (data) ++injected;
    return next_seq++;
  }

  // After a failure: wait until no task is queued or running, so that every
  // executor is idle before it is closed.
  void drain() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding_tasks.load() == 0; });
  }

  void fail_pending_callbacks() {
    std::map<std::uint64_t, std::function<void(Response)>> pending;
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(mu);
      pending.swap(callbacks);
      e = failure;
    }
    for (auto& [seq, cb] : pending) cb(Response{Request{}, e});
  }
};

Flow::Flow() : impl_(std::make_unique<Impl>()) {}
Flow::Flow(Flow&&) noexcept = default;
Flow& Flow::operator=(Flow&&) noexcept = default;

Flow::~Flow() {
  if (impl_ && impl_->open) {
    try {
      close();
    } catch (const std::exception& e) {
      impl_->logger->error("flow", std::string("while closing: ") + e.what());
    }
  }
}

Flow Flow::load(const std::string& path, const std::vector<Override>& overrides) {
  return from_config(parse_flow_file(path, overrides));
}

Flow Flow::from_config(FlowConfig config) {
  Flow f;
  f.impl_->config = std::move(config);
  f.impl_->prepare();
  return f;
}

Flow& Flow::add(const std::string& uses, const std::string& name, docarray::Value with, std::vector<std::string> needs,
                int replicas) {
  if (impl_->open) throw Error("add() after open(): build the flow first");
  auto& c = impl_->config;
  if (c.file.empty()) c.file = "<code>";
  ExecutorConfig e;
  e.uses = uses;
  e.name = name.empty() ? "executor" + std::to_string(c.executors.size()) : name;
  if (c.find(e.name)) throw ConfigError(Location{c.file, 0, 0}, "executor name '" + e.name + "' is used twice");
  e.with = std::move(with);
  e.needs = needs.empty() ? std::vector<std::string>{c.executors.empty() ? "gateway" : c.executors.back().name} : needs;
  e.replicas = replicas;
  e.where = Location{c.file, 0, 0};
  c.executors.push_back(std::move(e));
  impl_->graph.reset();
  return *this;
}

Flow& Flow::plugin_path(const std::string& path) {
  impl_->extra_plugin_paths.push_back(path);
  return *this;
}

const FlowConfig& Flow::config() const { return impl_->config; }

std::vector<std::pair<std::string, std::vector<std::string>>> Flow::executor_endpoints() const {
  if (!impl_->open) throw Error("executor_endpoints() before open()");
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (std::size_t v = 1; v + 1 < impl_->nodes.size(); ++v) {
    const Node& node = *impl_->nodes[v];
    out.emplace_back(node.name, node.replicas.empty() ? std::vector<std::string>{} : node.replicas.front()->endpoints());
  }
  return out;
}

const FlowGraph& Flow::graph() const {
  if (!impl_->graph) impl_->prepare();
  return *impl_->graph;
}

const PluginRegistry& Flow::plugins() const {
  impl_->load_plugins();
  return *impl_->registry;
}

bool Flow::is_open() const { return impl_->open; }

void Flow::isolate_failures(bool on) {
  if (impl_->open) throw Error("isolate_failures() after open()");
  impl_->isolate = on;
}

void Flow::observe_executors(std::function<void(const ExecutorSample&)> observer) {
  if (impl_->open) throw Error("observe_executors() after open()");
  impl_->observer = std::move(observer);
}

void Flow::open(const std::filesystem::path& workspace, Logger* logger) {
  auto& im = *impl_;
  if (im.open) throw Error("the flow is already open");
  if (!im.graph) im.prepare();
  if (logger) im.logger = logger;
  std::filesystem::path root = workspace.empty() ? std::filesystem::temp_directory_path() /
                                                       ("docflow-" + std::to_string(::getpid()) + "-" + im.config.name)
                                                 : workspace;
  const FlowGraph& g = *im.graph;
  unsigned threads = im.config.threads > 0 ? static_cast<unsigned>(im.config.threads)
                                            : std::max(2u, std::thread::hardware_concurrency());
  // Replicas ask for concurrency (they may wait on I/O, not only compute):
  // by default every replica of the most replicated local executor can run
  // at once. Remote executors hold no thread while they wait (handle_async).
  if (im.config.threads <= 0)
    for (const auto& e : im.config.executors)
      if (e.remote.empty()) threads = std::max(threads, static_cast<unsigned>(e.replicas));
  im.pool = std::make_unique<Pool>(threads);
  im.nodes.clear();
  for (std::size_t v = 0; v <= g.size(); ++v) {
    auto node = std::make_unique<Node>();
    node->vertex = v;
    node->name = v < g.size() ? g.name(v) : "output";
    if (v < g.size()) {
      node->preds = g.predecessors(v);
      node->succs = g.successors(v);
      if (node->succs.empty()) node->succs = {g.size()};  // a sink: the output node
    } else {
      node->preds = g.sinks();
    }
    im.nodes.push_back(std::move(node));
  }
  // Reset the accounting of any previous open().
  im.next_seq = im.injected = im.released = im.answered = 0;
  im.failure = nullptr;
  im.has_failed = false;
  im.end_requested = false;
  im.stopping = im.stream_ended = false;
  im.stats = {};
  // Logs roll back on resume only inside a run folder the caller gave.
  im.run_dir = workspace.empty() ? std::filesystem::path() : root.parent_path();

  for (std::size_t v : g.order()) {
    if (v == 0) continue;
    Node& node = *im.nodes[v];
    const ExecutorConfig& cfg = im.config.executors[v - 1];
    // A remote executor's plugin is where it runs, not necessarily here.
    const bool remote = !cfg.remote.empty();
    const ExecutorInfo* info = remote ? nullptr : &im.registry->find(cfg.uses);
    node.is_source = info && info->is_source;
    if (!cfg.when.is_null()) node.when = Filter::parse(cfg.when, cfg.when_where);
    for (const auto& [k, val] : cfg.env) ::setenv(k.c_str(), val.c_str(), 1);
    for (int r = 0; r < cfg.replicas; ++r) {
      ExecutorContext ctx;
      ctx.name = cfg.name;
      ctx.replica_id = r;
      ctx.replicas = cfg.replicas;
      ctx.workspace = cfg.replicas > 1 ? root / cfg.name / ("replica-" + std::to_string(r)) : root / cfg.name;
      ctx.run_dir = root.parent_path();  // flow run: runs/NAME/executors -> runs/NAME
      ctx.registry = &im.shared;
      ctx.logger = im.logger;
      ctx.end_stream = [&im] { im.end_requested = true; };
      ctx.resuming = im.resume.has_value();
      ctx.process_group = im.group;
      try {
        // One part of the executor: a local instance or a remote address.
        auto make = [&](ExecutorContext part, std::vector<std::string> addresses) -> std::shared_ptr<Executor> {
          if (remote)
            return std::make_shared<RemoteExecutor>(
                part, RemoteOptions{addresses, cfg.timeout_ready_ms, cfg.timeout_send_ms,
                                    cfg.token_file.empty() ? default_token() : read_token_file(cfg.token_file)});
          part.params = Params(check_params(info->schema, cfg.with, cfg.name));
          std::filesystem::create_directories(part.workspace);
          if (cfg.isolate) return im.isolated(cfg, part);
          return im.registry->create(cfg.uses, part);
        };
        std::shared_ptr<Executor> ex;
        if (cfg.shards > 1) {
          std::vector<std::shared_ptr<Executor>> parts;
          for (int sh = 0; sh < cfg.shards; ++sh) {
            ExecutorContext part = ctx;
            // Shard sh of replica r: its own workspace (or its own addresses).
            part.workspace = root / (cfg.name + "-" + std::to_string(sh));
            if (cfg.replicas > 1) part.workspace /= "replica-" + std::to_string(r);
            parts.push_back(make(part, remote ? cfg.shard_hosts[static_cast<std::size_t>(sh)] : std::vector<std::string>{}));
          }
          ex = std::make_shared<ShardedExecutor>(ctx, std::move(parts), cfg.polling);
        } else {
          ex = make(ctx, cfg.remote);
        }
        ex->open();
        node.replicas.push_back(ex);
        node.lanes.emplace_back();
        node.sends = ex->answers_later();
        im.opened.emplace_back(&node, node.replicas.size() - 1);
      } catch (const std::exception& e) {
        std::string msg = e.what();
        im.open = true;  // so that close() closes what did open
        try {
          close();
        } catch (const std::exception& ce) {
          im.logger->error("flow", std::string("while closing after a failed open: ") + ce.what());
        }
        throw ExecutorError(cfg.name, "", "open failed: " + msg);
      }
    }
  }
  // The gateway and the output have no executor.
  im.open = true;
  if (im.resume) {
    try {
      im.restore();
    } catch (const std::exception&) {
      try {
        close();
      } catch (const std::exception& ce) {
        im.logger->error("flow", std::string("while closing after a failed resume: ") + ce.what());
      }
      throw;
    }
  }
}

void Flow::enable_checkpoints(const std::filesystem::path& dir) {
  if (impl_->open) throw Error("enable_checkpoints() after open()");
  if (impl_->config.checkpoints > 0) impl_->checkpoints = std::make_unique<CheckpointStore>(dir, impl_->config.checkpoints);
}

void Flow::join_group(std::shared_ptr<ProcessGroup> group) {
  if (impl_->open) throw Error("join_group() after open()");
  impl_->group = std::move(group);
}

void Flow::resume_from(const Checkpoint& checkpoint) {
  if (impl_->open) throw Error("resume_from() after open()");
  impl_->resume = checkpoint;
}

docarray::DocumentArray Flow::post(const std::string& endpoint, docarray::DocumentArray docs,
                                   docarray::Value parameters) {
  std::mutex m;
  std::condition_variable cv;
  std::optional<Response> result;
  post(endpoint, std::move(docs), std::move(parameters), [&](Response r) {
    std::lock_guard<std::mutex> lock(m);
    result = std::move(r);
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return result.has_value(); });
  if (result->error) std::rethrow_exception(result->error);
  return std::move(result->request.docs);
}

void Flow::post(const std::string& endpoint, docarray::DocumentArray docs, docarray::Value parameters,
                std::function<void(Response)> on_response) {
  post(Request{endpoint, std::move(docs), std::move(parameters)}, std::move(on_response), PostOptions{});
}

void Flow::post(Request request, std::function<void(Response)> on_response, const PostOptions& options) {
  auto& im = *impl_;
  if (!im.open) throw Error("post() before open()");
  if (!im.wait_for_room()) {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      e = im.failure ? im.failure : std::make_exception_ptr(Error("the flow was stopped"));
    }
    on_response(Response{Request{}, e});
    return;
  }
  auto msg = std::make_unique<Message>();
  msg->request = std::move(request);
  msg->only = options.only_executors;
  msg->on_flow_threads = options.on_flow_threads;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    msg->seq = im.next_seq++;
    ++im.injected;
    im.callbacks[msg->seq] = std::move(on_response);
  }
  im.inject(std::move(msg));
  // A failure that came before the callback was registered drops the request
  // inside the flow without answering it: answer it here.
  if (im.failed()) im.fail_pending_callbacks();
}

void Flow::post_event(const Event& event, std::function<void(Response)> on_done) {
  auto& im = *impl_;
  if (!im.open) throw Error("post_event() before open()");
  if (im.failed()) {
    std::lock_guard<std::mutex> lock(im.mu);
    on_done(Response{Request{}, im.failure});
    return;
  }
  auto msg = std::make_unique<Message>();
  msg->is_event = true;
  msg->event = event;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    msg->seq = im.next_seq++;
    im.callbacks[msg->seq] = std::move(on_done);
  }
  im.inject(std::move(msg));
  if (im.failed()) im.fail_pending_callbacks();
}

void Flow::wait() {
  auto& im = *impl_;
  std::unique_lock<std::mutex> lock(im.mu);
  im.cv.wait(lock, [&] { return im.failure || im.answered == im.injected; });
}

RunStats Flow::run(std::function<void(const Request&)> on_output) {
  auto& im = *impl_;
  if (!im.open) throw Error("run() before open()");
  Node* source_node = nullptr;
  for (auto& n : im.nodes)
    if (n->is_source) source_node = n.get();
  if (!source_node) throw Error("flow '" + im.config.name + "' has no source executor (a reader) to run from");
  auto* source = dynamic_cast<Source*>(source_node->replicas.front().get());
  if (!source) throw Error("executor '" + source_node->name + "' is marked as a source but is not a docflow::Source");
  im.on_output = std::move(on_output);
  const std::string endpoint = source->endpoint();

  // The source is called only from this thread: pulled whenever there is room.
  std::uint64_t epochs_sent = 0;
  const auto run_start = std::chrono::steady_clock::now();
  try {
    while (im.wait_for_room()) {
      std::optional<Source::Item> item;
      if (!im.end_requested) {
        const auto t0 = std::chrono::steady_clock::now();
        item = source->next();
        im.stats.source_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      auto msg = std::make_unique<Message>();
      if (!item) {
        msg->seq = im.take_seq(false);
        msg->is_event = true;
        msg->event = Event{Event::Kind::EndOfStream, 0, endpoint};
        im.forward(source_node->succs, std::move(msg));
        break;
      }
      const bool epoch_end = item->kind == Source::Item::Kind::EndOfEpoch;
      if (epoch_end) {
        msg->seq = im.take_seq(false);
        msg->is_event = true;
        msg->event = Event{Event::Kind::EndOfEpoch, item->epoch, endpoint};
        ++epochs_sent;
      } else {
        msg->seq = im.take_seq(true);
        im.stats.documents += item->docs.size();
        ++im.stats.requests;
        msg->request = Request{endpoint, std::move(item->docs), {}};
      }
      im.forward(source_node->succs, std::move(msg));
      if (epoch_end) {
        // An epoch ends everywhere before the next begins: an executor may
        // end the stream there (early stopping), and evaluation sees the
        // epoch's model, not one a batch further.
        {
          std::unique_lock<std::mutex> lock(im.mu);
          im.cv.wait(lock, [&] { return im.failure || im.stopping || im.stats.epochs >= epochs_sent; });
          if (im.failure || im.stopping) continue;  // wait_for_room() ends the loop
        }
        if (im.checkpoints) {
          try {
            im.snapshot(item->epoch);
          } catch (const ExecutorError&) {
            throw;  // an executor's save_state failed: it is named
          } catch (const std::exception& e) {
            im.fail(std::make_exception_ptr(Error("the training checkpoint after epoch " + std::to_string(item->epoch + 1) +
                                                  " could not be written: " + e.what())));
            break;
          }
        }
        // Rank 0 writes the checkpoint while the others would wait for it at
        // their next collective, which a large model's state can keep past
        // the distributed timeout: every rank meets here instead, with room
        // for the write (rank 0 serves the store: if it dies, the wait ends at once).
        if (im.group && im.group->size() > 1 && im.config.checkpoints > 0) {
          const std::string key = "checkpoint-after-epoch-" + std::to_string(item->epoch);
          if (im.group->rank() == 0)
            im.group->store_set(key, "written");
          else
            im.group->store_get(key, std::max(im.group->environment().timeout, std::chrono::milliseconds(600000)));
        }
      }
    }
  } catch (const ExecutorError&) {
    im.fail(std::current_exception());  // a checkpoint that failed names its executor
  } catch (const std::exception& e) {
    im.fail(std::make_exception_ptr(ExecutorError(source_node->name, endpoint, e.what())));
  }
  {
    std::unique_lock<std::mutex> lock(im.mu);
    im.cv.wait(lock, [&] { return im.stream_ended || im.failure || im.stopping; });
  }
  im.drain();
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    failure = im.failure;
    if (!failure && im.stopping) failure = std::make_exception_ptr(Error("the run was interrupted"));
  }
  if (failure) std::rethrow_exception(failure);
  im.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return im.stats;
}

SharedRegistry& Flow::shared_resources() { return impl_->shared; }

void Flow::request_stop() {
  auto& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mu);
  im.stopping = true;
  if (!im.failure) im.failure = std::make_exception_ptr(Error("the run was interrupted"));
  im.has_failed = true;
  im.cv.notify_all();
  im.room_cv.notify_all();
}

void Flow::close() {
  auto& im = *impl_;
  if (!im.open) return;
  if (im.pool) {
    im.drain();
    im.pool->join();
  }
  std::exception_ptr first;
  for (auto it = im.opened.rbegin(); it != im.opened.rend(); ++it) {
    Node& node = *it->first;
    try {
      node.replicas[it->second]->close();
    } catch (const std::exception& e) {
      im.logger->error(node.name, std::string("close failed: ") + e.what());
      if (!first) first = std::make_exception_ptr(ExecutorError(node.name, "", std::string("close failed: ") + e.what()));
    }
  }
  im.opened.clear();
  im.nodes.clear();
  im.pool.reset();
  im.open = false;
  if (first) std::rethrow_exception(first);
}

}  // namespace docflow
