#include "sharded_executor.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "docflow/error.hpp"

namespace docflow {
namespace {

// The match's score that orders it, and whether larger is better.
std::pair<double, bool> score_of(const docarray::Document& m) {
  if (m.scores.empty()) return {0.0, false};
  const auto& [name, s] = *m.scores.begin();
  const std::string& op = s.op_name.empty() ? name : s.op_name;
  return {s.value, op == "dot" || op == "inner_product" || op == "similarity"};
}

}  // namespace

ShardedExecutor::ShardedExecutor(ExecutorContext context, std::vector<std::shared_ptr<Executor>> shards,
                                 std::map<std::string, std::string> polling)
    : Executor(std::move(context)), shards_(std::move(shards)), polling_(std::move(polling)) {}

void ShardedExecutor::open() {
  for (auto& s : shards_) {
    try {
      s->open();
    } catch (const std::exception& e) {
      close();
      throw Error("shard " + std::to_string(opened_) + ": " + e.what());
    }
    ++opened_;
  }
  // Every endpoint a shard binds (remote shards know theirs only once open).
  std::set<std::string> endpoints;
  for (auto& s : shards_)
    for (const auto& e : s->endpoints()) endpoints.insert(e);
  for (const auto& e : endpoints) on(e, [this](Request& r) { route(r); });
}

void ShardedExecutor::close() {
  std::string first;
  for (std::size_t i = 0; i < opened_; ++i) {
    try {
      shards_[i]->close();
    } catch (const std::exception& e) {
      if (first.empty()) first = "shard " + std::to_string(i) + ": " + e.what();
    }
  }
  opened_ = 0;
  if (!first.empty()) throw Error(first);
}

void ShardedExecutor::on_event(const Event& event) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    try {
      shards_[i]->on_event(event);
    } catch (const std::exception& e) {
      throw Error("shard " + std::to_string(i) + ": " + e.what());
    }
  }
}

void ShardedExecutor::save_state(const std::filesystem::path& dir) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    const auto sub = dir / ("shard-" + std::to_string(i));
    std::filesystem::create_directories(sub);
    shards_[i]->save_state(sub);
  }
}

void ShardedExecutor::load_state(const std::filesystem::path& dir) {
  for (std::size_t i = 0; i < shards_.size(); ++i) shards_[i]->load_state(dir / ("shard-" + std::to_string(i)));
}

bool ShardedExecutor::polls_all(const std::string& endpoint) const {
  auto it = polling_.find(endpoint);
  if (it == polling_.end()) it = polling_.find("*");
  return it != polling_.end() && it->second == "ALL";
}

void ShardedExecutor::call(std::size_t shard, Request& request) {
  try {
    shards_[shard]->handle(request);
  } catch (const std::exception& e) {
    throw Error("shard " + std::to_string(shard) + ": " + e.what());
  }
}

std::exception_ptr ShardedExecutor::named(std::size_t shard, std::exception_ptr error) {
  if (!error) return error;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return std::make_exception_ptr(Error("shard " + std::to_string(shard) + ": " + e.what()));
  } catch (...) {
    return std::make_exception_ptr(Error("shard " + std::to_string(shard) + ": unknown exception"));
  }
}

std::vector<Request> ShardedExecutor::split_by_id(Request& request, std::vector<std::size_t>& where) const {
  const std::size_t n = shards_.size();
  std::vector<Request> parts(n, Request{request.endpoint, {}, request.parameters});
  for (auto& d : request.docs.raw()) {
    const std::size_t s = std::hash<std::string>{}(d.id) % n;
    where.push_back(s);
    parts[s].docs.append(std::move(d));
  }
  return parts;
}

void ShardedExecutor::reassemble(Request& request, std::vector<Request>& parts, const std::vector<std::size_t>& where) {
  const std::size_t n = parts.size();
  std::vector<std::size_t> next(n, 0);
  docarray::DocumentArray out;
  for (std::size_t s : where)
    if (next[s] < parts[s].docs.size()) out.append(std::move(parts[s].docs[next[s]++]));
  for (std::size_t s = 0; s < n; ++s)  // what a shard added beyond the documents it was given
    for (; next[s] < parts[s].docs.size(); ++next[s]) out.append(std::move(parts[s].docs[next[s]]));
  request.docs = std::move(out);
}

void ShardedExecutor::route(Request& request) {
  const std::size_t n = shards_.size();
  if (!polls_all(request.endpoint)) {
    if (request.endpoint != "/index") {
      call(turn_++ % n, request);
      return;
    }
    // Each document to the shard its id hashes to; the answers back in the request's order.
    std::vector<std::size_t> where;
    std::vector<Request> parts = split_by_id(request, where);
    for (std::size_t s = 0; s < n; ++s)
      if (!parts[s].docs.empty()) call(s, parts[s]);
    reassemble(request, parts, where);
    return;
  }
  // ALL: every shard at once, each on its own copy of the request.
  std::vector<Request> copies(n, request);
  std::vector<std::exception_ptr> errors(n);
  {
    std::vector<std::thread> threads;
    for (std::size_t s = 1; s < n; ++s)
      threads.emplace_back([&, s] {
        try {
          call(s, copies[s]);
        } catch (...) {
          errors[s] = std::current_exception();
        }
      });
    try {
      call(0, copies[0]);
    } catch (...) {
      errors[0] = std::current_exception();
    }
    for (auto& t : threads) t.join();
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  merge_answers(request, copies);
}

bool ShardedExecutor::answers_later() const {
  return std::all_of(shards_.begin(), shards_.end(), [](const auto& s) { return s->answers_later(); });
}

// Remote shards: the parts go out at once, without a thread waiting for
// each; the last answer puts the request together.
struct ShardedExecutor::Fanout {
  Request* request;
  Done done;
  std::vector<Request> parts;
  std::vector<std::size_t> where;  // ANY /index: the shard of each document
  std::vector<std::exception_ptr> errors;
  std::atomic<std::size_t> remaining{0};
};

void ShardedExecutor::handle_async(Request& request, Done done) {
  if (!answers_later()) return Executor::handle_async(request, std::move(done));
  const std::size_t n = shards_.size();
  const bool all = polls_all(request.endpoint);
  if (!all && request.endpoint != "/index") {
    const std::size_t s = turn_++ % n;
    return shards_[s]->handle_async(request, [s, done = std::move(done)](std::exception_ptr e) { done(named(s, e)); });
  }
  auto f = std::make_shared<Fanout>();
  f->request = &request;
  f->done = std::move(done);
  f->parts = all ? std::vector<Request>(n, request) : split_by_id(request, f->where);
  f->errors.resize(n);
  std::vector<std::size_t> targets;
  for (std::size_t s = 0; s < n; ++s)
    if (all || !f->parts[s].docs.empty()) targets.push_back(s);
  if (targets.empty()) return f->done(nullptr);  // an /index without documents
  f->remaining = targets.size();
  for (std::size_t s : targets)
    shards_[s]->handle_async(f->parts[s], [this, f, s, all](std::exception_ptr e) {
      f->errors[s] = named(s, e);
      if (f->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      for (auto& error : f->errors)
        if (error) return f->done(error);
      try {
        if (all) merge_answers(*f->request, f->parts);
        else reassemble(*f->request, f->parts, f->where);
      } catch (...) {
        return f->done(std::current_exception());
      }
      f->done(nullptr);
    });
}

void ShardedExecutor::merge_answers(Request& request, std::vector<Request>& copies) const {
  const std::size_t n = copies.size();
  // The cut: the request's `limit`, else the shards' own (local ones say it),
  // else the longest list one shard returned (each returned at most its limit).
  std::size_t cut = 0;
  if (const docarray::Value* l = request.parameters.find("limit"); l && l->is_int() && l->as_int() > 0)
    cut = static_cast<std::size_t>(l->as_int());
  else if (shards_[0]->params().has("limit") && shards_[0]->params().get("limit").is_int())
    cut = static_cast<std::size_t>(std::max<std::int64_t>(1, shards_[0]->params().get_int("limit")));
  else
    for (const auto& c : copies)
      for (const auto& d : c.docs) cut = std::max(cut, d.matches.size());
  // Merge by document id: the first shard's documents, every shard's matches.
  docarray::DocumentArray merged = std::move(copies[0].docs);
  for (std::size_t s = 1; s < n; ++s)
    for (auto& d : copies[s].docs.raw()) {
      if (docarray::Document* base = merged.find(d.id)) {
        for (auto& m : d.matches.raw()) base->matches.append(std::move(m));
      } else {
        merged.append(std::move(d));
      }
    }
  for (auto& d : merged.raw()) {
    if (d.matches.empty()) continue;
    std::vector<docarray::Document>& ms = d.matches.raw();
    std::stable_sort(ms.begin(), ms.end(), [](const docarray::Document& a, const docarray::Document& b) {
      const auto [x, larger_better] = score_of(a);
      const double y = score_of(b).first;
      return larger_better ? x > y : x < y;
    });
    if (ms.size() > cut) ms.resize(cut);
  }
  request.docs = std::move(merged);
  if (!copies[0].parameters.is_null()) request.parameters = std::move(copies[0].parameters);
}

}  // namespace docflow
