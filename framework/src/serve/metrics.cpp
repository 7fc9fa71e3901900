#include "metrics.hpp"

#include <cstdio>

#include "http_server.hpp"

namespace docflow::serve {
namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Prometheus label values escape backslash, quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += name + "_bucket{" + labels + sep + "le=\"" + (i < kBounds.size() ? number(kBounds[i]) : "+Inf") + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum_micros_.load(std::memory_order_relaxed) / 1e6) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

Metrics::Metrics(const std::vector<std::string>& executors) {
  for (const auto& e : executors) executors_[e] = std::make_unique<PerExecutor>();
}

void Metrics::request(const std::string& endpoint, int status, double seconds) {
  PerEndpoint* e;
  std::atomic<std::uint64_t>* by_status;
  {
    // Only finding (or, the first time, making) the series is locked.
    std::lock_guard<std::mutex> lock(endpoints_mu_);
    auto& slot = endpoints_[endpoint];
    if (!slot) slot = std::make_unique<PerEndpoint>();
    auto& counter = statuses_[status];
    if (!counter) counter = std::make_unique<std::atomic<std::uint64_t>>(0);
    e = slot.get();
    by_status = counter.get();
  }
  e->latency.observe(seconds);
  (status < 400 ? e->ok : e->failed).fetch_add(1, std::memory_order_relaxed);
  by_status->fetch_add(1, std::memory_order_relaxed);
}

void Metrics::executor(const std::string& name, double seconds, std::size_t documents, bool failed) {
  auto it = executors_.find(name);
  if (it == executors_.end()) return;
  PerExecutor& e = *it->second;
  e.latency.observe(seconds);
  e.calls.fetch_add(1, std::memory_order_relaxed);
  if (failed) e.failures.fetch_add(1, std::memory_order_relaxed);
  e.documents.fetch_add(documents, std::memory_order_relaxed);
}

std::string Metrics::render(const TransportStats& t) const {
  std::string out;
  std::lock_guard<std::mutex> lock(endpoints_mu_);
  header(out, "jina_receiving_request_seconds", "histogram", "Time from a request's arrival to its answer, per endpoint.");
  for (const auto& [ep, e] : endpoints_) e->latency.render(out, "jina_receiving_request_seconds", "endpoint=\"" + label(ep) + "\"");
  header(out, "jina_successful_requests_total", "counter", "Requests answered with a 2xx or 3xx status, per endpoint.");
  for (const auto& [ep, e] : endpoints_)
    out += "jina_successful_requests_total{endpoint=\"" + label(ep) + "\"} " + std::to_string(e->ok.load()) + "\n";
  header(out, "jina_failed_requests_total", "counter", "Requests answered with a 4xx or 5xx status, per endpoint.");
  for (const auto& [ep, e] : endpoints_)
    out += "jina_failed_requests_total{endpoint=\"" + label(ep) + "\"} " + std::to_string(e->failed.load()) + "\n";
  header(out, "docflow_http_responses_total", "counter", "Responses per HTTP status code.");
  for (const auto& [code, n] : statuses_)
    out += "docflow_http_responses_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n->load()) + "\n";
  header(out, "jina_number_of_pending_requests", "gauge", "Requests in the flow or waiting for room in it.");
  out += "jina_number_of_pending_requests " + std::to_string(pending.load()) + "\n";
  header(out, "jina_process_request_seconds", "histogram", "Time an executor spent on one request.");
  for (const auto& [name, e] : executors_) e->latency.render(out, "jina_process_request_seconds", "executor=\"" + label(name) + "\"");
  header(out, "jina_document_processed_total", "counter", "Documents an executor was given.");
  for (const auto& [name, e] : executors_)
    out += "jina_document_processed_total{executor=\"" + label(name) + "\"} " + std::to_string(e->documents.load()) + "\n";
  header(out, "docflow_executor_failures_total", "counter", "Requests an executor failed.");
  for (const auto& [name, e] : executors_)
    out += "docflow_executor_failures_total{executor=\"" + label(name) + "\"} " + std::to_string(e->failures.load()) + "\n";
  header(out, "docflow_http_received_bytes_total", "counter", "Bytes read from clients.");
  out += "docflow_http_received_bytes_total " + std::to_string(t.bytes_in.load()) + "\n";
  header(out, "docflow_http_sent_bytes_total", "counter", "Bytes written to clients.");
  out += "docflow_http_sent_bytes_total " + std::to_string(t.bytes_out.load()) + "\n";
  header(out, "docflow_http_connections", "gauge", "Open client connections.");
  out += "docflow_http_connections " + std::to_string(t.connections.load()) + "\n";
  header(out, "docflow_http_connections_refused_total", "counter", "Connections refused over the limit.");
  out += "docflow_http_connections_refused_total " + std::to_string(t.connections_refused.load()) + "\n";
  header(out, "docflow_http_slow_clients_dropped_total", "counter", "Connections dropped for sending a request too slowly.");
  out += "docflow_http_slow_clients_dropped_total " + std::to_string(t.dropped_slow.load()) + "\n";
  return out;
}

}  // namespace docflow::serve
