#pragma once
// Jina's shards: one executor in N parts (local instances with their own
// workspaces, or remote addresses), behind one node of the flow. Per
// endpoint, `polling` says where a request goes:
//   ANY  one shard: /index splits its documents by a hash of their ids (an
//        index spreads evenly and deterministically), other endpoints take
//        the shards in turn;
//   ALL  every shard, at once; the answers are merged by document (the
//        first shard's fields, every shard's matches) and each document's
//        matches re-sorted by their score and cut to the longest list a
//        single shard returned, so that N shards of an index answer as one
//        index over all of it (Jina leaves the union unsorted).
// Events reach every shard. A shard's failure fails the request, naming it.
// Remote shards answer later: a request's parts go to them at once, with no
// thread waiting for each (see Executor::handle_async).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "docflow/executor.hpp"

namespace docflow {

class ShardedExecutor : public Executor {
 public:
  ShardedExecutor(ExecutorContext context, std::vector<std::shared_ptr<Executor>> shards,
                  std::map<std::string, std::string> polling);
  void open() override;
  void close() override;
  void on_event(const Event& event) override;
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;
  // Answers later when every shard does (remote shards).
  bool answers_later() const override;
  void handle_async(Request& request, Done done) override;

 private:
  struct Fanout;
  void route(Request& request);
  bool polls_all(const std::string& endpoint) const;
  void call(std::size_t shard, Request& request);
  static std::exception_ptr named(std::size_t shard, std::exception_ptr error);
  // ANY /index: the documents by the shard their id hashes to (`where`
  // gets each one's shard), and back in the request's order.
  std::vector<Request> split_by_id(Request& request, std::vector<std::size_t>& where) const;
  static void reassemble(Request& request, std::vector<Request>& parts, const std::vector<std::size_t>& where);
  // ALL: every shard's answer merged into `request`.
  void merge_answers(Request& request, std::vector<Request>& copies) const;

  std::vector<std::shared_ptr<Executor>> shards_;
  std::map<std::string, std::string> polling_;
  std::size_t opened_ = 0, turn_ = 0;
};

}  // namespace docflow
