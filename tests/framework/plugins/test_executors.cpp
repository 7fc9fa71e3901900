// Executors that exist to test the runtime: they record what they saw, fail
// on purpose, sleep to reorder completions, and detect concurrent calls.
#include <ATen/ATen.h>
#include <csignal>
#include <pthread.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <fstream>
#include <random>
#include <thread>

#include "docflow/plugin.hpp"

namespace {

using docflow::Event;
using docflow::ExecutorContext;
using docflow::Request;

// Throws if two threads are ever inside the same instance at once.
class ExclusiveGuard {
 public:
  explicit ExclusiveGuard(std::atomic<int>& inside) : inside_(inside) {
    if (inside_.fetch_add(1) != 0) throw std::runtime_error("called from two threads at once");
  }
  ~ExclusiveGuard() { inside_.fetch_sub(1); }

 private:
  std::atomic<int>& inside_;
};

// A source of `n` documents with tags.i = 0..n-1, in batches, for epochs.
class Counter : public docflow::Source {
 public:
  explicit Counter(ExecutorContext c) : Source(std::move(c)) {}
  std::optional<Item> next() override {
    const auto n = params().get_int("n"), batch = params().get_int("batch_size");
    const auto epochs = params().get_int("epochs");
    if (epoch_ >= epochs) return std::nullopt;
    Item item;
    item.epoch = static_cast<int>(epoch_);
    if (i_ >= n) {
      item.kind = Item::Kind::EndOfEpoch;
      ++epoch_;
      i_ = 0;
      return item;
    }
    for (std::int64_t k = 0; k < batch && i_ < n; ++k, ++i_) {
      docarray::Document d("doc-" + std::to_string(i_));
      d.tags["i"] = i_;
      d.text = "document " + std::to_string(i_);
      item.docs.append(d);
    }
    return item;
  }
  std::string endpoint() const override { return params().get_string("endpoint"); }
  // Checkpoints are taken at epoch boundaries: the position is the epoch.
  void save_state(const std::filesystem::path& dir) override { std::ofstream(dir / "epoch") << epoch_; }
  void load_state(const std::filesystem::path& dir) override {
    std::ifstream in(dir / "epoch");
    if (!(in >> epoch_)) throw docflow::Error("no epoch in " + (dir / "epoch").string());
    i_ = 0;
  }

 private:
  std::int64_t i_ = 0, epoch_ = 0;
};

// Sets tags[key] = value on every document, on every endpoint.
class Tagger : public docflow::Executor {
 public:
  explicit Tagger(ExecutorContext c) : Executor(std::move(c)) {
    on(params().get_string("endpoint"), [this](Request& r) {
      ExclusiveGuard guard(inside_);
      for (auto& d : r.docs) d.tags[params().get_string("key")] = params().get("value");
    });
  }

 private:
  std::atomic<int> inside_{0};
};

// Sleeps a random time per request (so replicas finish out of order), and
// records which replica handled each document.
class Sleeper : public docflow::Executor {
 public:
  explicit Sleeper(ExecutorContext c) : Executor(std::move(c)), rng_(static_cast<unsigned>(context().replica_id + 1)) {
    on("*", [this](Request& r) {
      ExclusiveGuard guard(inside_);
      std::uniform_int_distribution<int> ms(0, static_cast<int>(params().get_int("max_ms")));
      std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng_)));
      for (auto& d : r.docs) d.tags["replica"] = context().replica_id;
    });
  }

 private:
  std::atomic<int> inside_{0};
  std::mt19937 rng_;
};

// Writes the thread it ran on (pthread_self) into tags[key] of every
// document, after sleeping `sleep_us` (0: none): the runtime's choice of
// thread, seen from inside.
class ThreadMarker : public docflow::Executor {
 public:
  explicit ThreadMarker(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [this](Request& r) {
      if (const auto us = params().get_int("sleep_us"); us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
      for (auto& d : r.docs) d.tags[params().get_string("key")] = static_cast<std::int64_t>(::pthread_self());
    });
  }
};

// Fails on its `after`-th request (1-based), in open() when `in_open`, and
// writes a `closed` marker into its workspace when closed.
class Failer : public docflow::Executor {
 public:
  explicit Failer(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [this](Request&) {
      if (++seen_ == params().get_int("after")) throw std::runtime_error(params().get_string("message"));
    });
  }
  void open() override {
    std::ofstream(context().workspace / "opened") << "1";
    if (params().get_bool("in_open")) throw std::runtime_error(params().get_string("message"));
  }
  void close() override { std::ofstream(context().workspace / "closed") << seen_; }

 private:
  std::int64_t seen_ = 0;
};

// Records, in order, every request (first document's tags.i and size) and
// every event, into WORKSPACE/record.txt when closed.
class Recorder : public docflow::Executor {
 public:
  explicit Recorder(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [this](Request& r) {
      ExclusiveGuard guard(inside_);
      for (const auto& d : r.docs) {
        const docarray::Value* i = d.find_tag("i");
        lines_.push_back("doc " + (i ? i->dump() : d.id));
      }
    });
  }
  void on_event(const Event& e) override {
    lines_.push_back(e.kind == Event::Kind::EndOfEpoch ? "end-of-epoch " + std::to_string(e.epoch) : "end-of-stream");
  }
  void close() override {
    std::ofstream out(context().workspace / "record.txt");
    for (const auto& l : lines_) out << l << "\n";
  }

 private:
  std::atomic<int> inside_{0};
  std::vector<std::string> lines_;
};

// Does what a document's tags ask: `fail` throws naming the document,
// `sleep_ms` sleeps. For serving tests: one request fails, the next works.
class Misbehaver : public docflow::Executor {
 public:
  explicit Misbehaver(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [](Request& r) {
      for (auto& d : r.docs) {
        if (const docarray::Value* ms = d.find_tag("sleep_ms")) std::this_thread::sleep_for(std::chrono::milliseconds(ms->as_int()));
        if (const docarray::Value* f = d.find_tag("fail"); f && f->is_bool() && f->as_bool())
          throw std::runtime_error("document '" + d.text + "' asked to fail");
        // A plugin's segfault, for the isolation tests: the process dies of SIGSEGV.
        if (const docarray::Value* c = d.find_tag("crash"); c && c->is_bool() && c->as_bool()) std::raise(SIGSEGV);
        d.tags["misbehaver_saw"] = true;
      }
    });
  }
};

// A stand-in text encoder for search tests: each document's text as a bag
// of hashed lower-case words in 16 dimensions, so that texts sharing words
// are near each other.
class TextHasher : public docflow::Executor {
 public:
  explicit TextHasher(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [](Request& r) {
      for (auto& d : r.docs) {
        if (d.text.empty()) continue;
        at::Tensor e = at::zeros({16});
        std::string word;
        for (std::size_t i = 0; i <= d.text.size(); ++i) {
          const char c = i < d.text.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(d.text[i]))) : ' ';
          if (std::isalnum(static_cast<unsigned char>(c))) {
            word += c;
          } else if (!word.empty()) {
            e[static_cast<std::int64_t>(std::hash<std::string>{}(word) % 16)] += 1;
            word.clear();
          }
        }
        d.embedding = e;
      }
    });
  }
};

// Publishes a shared counter in open(); Consumer finds it and counts documents.
class Publisher : public docflow::Executor {
 public:
  explicit Publisher(ExecutorContext c) : Executor(std::move(c)) {}
  void open() override { registry().publish(params().get_string("resource"), std::make_shared<std::atomic<long>>(0)); }
};

class Consumer : public docflow::Executor {
 public:
  explicit Consumer(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [this](Request& r) {
      *counter_ += static_cast<long>(r.docs.size());
      for (auto& d : r.docs) d.tags["count"] = static_cast<long>(*counter_);
    });
  }
  void open() override { counter_ = registry().get<std::atomic<long>>(params().get_string("resource")); }

 private:
  std::shared_ptr<std::atomic<long>> counter_;
};

// Holds each request until `n` requests are inside its instances at once
// (every instance in this process counts), then lets them all go; one that
// waits `timeout_ms` fails naming how many it met. It proves that requests
// reach an executor concurrently, without timing anything.
class Rendezvous : public docflow::Executor {
 public:
  explicit Rendezvous(ExecutorContext c) : Executor(std::move(c)) {
    on("*", [this](Request& r) {
      static std::mutex m;
      static std::condition_variable cv;
      static std::int64_t arrived = 0;
      const std::int64_t n = params().get_int("n");
      std::unique_lock<std::mutex> lock(m);
      const std::int64_t group = arrived++ / n;  // the requests that meet together
      cv.notify_all();
      if (!cv.wait_for(lock, std::chrono::milliseconds(params().get_int("timeout_ms")), [&] { return arrived >= (group + 1) * n; }))
        throw std::runtime_error("only " + std::to_string(arrived - group * n) + " of " + std::to_string(n) +
                                 " requests were in flight together");
      for (auto& d : r.docs) d.tags["met"] = n;
    });
  }
};

using docflow::plugin::at_least;
using docflow::plugin::param;

const docflow_param_schema kCounterParams[] = {
    at_least(param("n", "int", "10", "documents"), 0), at_least(param("batch_size", "int", "1", "per request"), 1),
    at_least(param("epochs", "int", "1", "epochs"), 1), param("endpoint", "string", "\"/index\"", "endpoint")};
const docflow_param_schema kTaggerParams[] = {param("key", "string", "\"seen\"", "tag name"),
                                              param("value", "any", "true", "tag value"),
                                              param("endpoint", "string", "\"*\"", "the endpoint to bind")};
const docflow_param_schema kSleeperParams[] = {at_least(param("max_ms", "int", "5", "longest sleep"), 0)};
const docflow_param_schema kFailerParams[] = {param("after", "int", "1", "fail on this request"),
                                              param("message", "string", "\"boom\"", "the error"),
                                              param("in_open", "bool", "false", "fail in open() instead")};
const docflow_param_schema kRendezvousParams[] = {at_least(param("n", "int", "2", "requests that meet"), 1),
                                                  at_least(param("timeout_ms", "int", "20000", "how long one waits"), 1)};
const docflow_param_schema kThreadMarkerParams[] = {param("key", "string", "\"thread\"", "tag name"),
                                                    at_least(param("sleep_us", "int", "0", "sleep per request"), 0)};
const docflow_param_schema kResourceParams[] = {param("resource", "string", "\"counter\"", "shared resource name")};

const docflow_executor_entry kExecutors[] = {
    docflow::plugin::executor<Counter>("Counter", "n documents with tags.i", kCounterParams),
    docflow::plugin::executor<Tagger>("Tagger", "sets a tag", kTaggerParams),
    docflow::plugin::executor<Sleeper>("Sleeper", "sleeps at random", kSleeperParams),
    docflow::plugin::executor<Failer>("Failer", "fails on purpose", kFailerParams),
    docflow::plugin::executor<ThreadMarker>("ThreadMarker", "tags documents with the thread it ran on", kThreadMarkerParams),
    docflow::plugin::executor<Recorder>("Recorder", "records requests and events"),
    docflow::plugin::executor<Publisher>("Publisher", "publishes a shared counter", kResourceParams),
    docflow::plugin::executor<Consumer>("Consumer", "uses the shared counter", kResourceParams),
    docflow::plugin::executor<Misbehaver>("Misbehaver", "fails, sleeps or crashes when a document's tags ask"),
    docflow::plugin::executor<TextHasher>("TextHasher", "embeds texts as hashed bags of words (a stand-in encoder)"),
    docflow::plugin::executor<Rendezvous>("Rendezvous", "holds requests until n of them are inside at once", kRendezvousParams),
};

}  // namespace

DOCFLOW_PLUGIN("testing", "1.0.0", "executors for docflow's own tests", kExecutors)
