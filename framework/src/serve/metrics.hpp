#pragma once
// A served flow's metrics in Prometheus text format, with Jina's names where
// they fit. Counters and histograms are lock-free atomics; the set of
// executors and endpoints is fixed when the gateway starts, so the hot path
// never allocates.
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

namespace docflow::serve {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,  5,    10};
  void observe(double seconds);
  // `name{labels,le="..."} count` lines, then _sum and _count.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
};

struct TransportStats;

class Metrics {
 public:
  Metrics(const std::vector<std::string>& executors);

  // A request answered by the gateway: its endpoint or route (from a fixed
  // set: the caller never passes a path a client made up), the HTTP
  // status, the seconds from its arrival.
  void request(const std::string& endpoint, int status, double seconds);
  void executor(const std::string& name, double seconds, std::size_t documents, bool failed);
  std::atomic<std::int64_t> pending{0};

  std::string render(const TransportStats& transport) const;

 private:
  struct PerEndpoint {
    Histogram latency;
    std::atomic<std::uint64_t> ok{0}, failed{0};
  };
  struct PerExecutor {
    Histogram latency;
    std::atomic<std::uint64_t> calls{0}, failures{0}, documents{0};
  };

  std::map<std::string, std::unique_ptr<PerExecutor>> executors_;
  // Endpoints are the flow's plus the gateway's routes, registered on first
  // use under a lock (a handful); the counters themselves are atomics.
  mutable std::mutex endpoints_mu_;
  std::map<std::string, std::unique_ptr<PerEndpoint>> endpoints_;
  std::map<int, std::unique_ptr<std::atomic<std::uint64_t>>> statuses_;
};

}  // namespace docflow::serve
