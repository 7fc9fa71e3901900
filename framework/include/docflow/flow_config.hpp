#pragma once
// Flow files: a Jina-compatible YAML subset, parsed strictly. Every error is
// a ConfigError naming the file, line and column, the key, what was expected
// and what was found; an unknown key suggests the closest known one.
//
//   jtype: Flow
//   with: {name: demo, workspace: runs, prefetch: 8, plugins: [./plugins], checkpoints: 1}
//   executors:
//     - name: reader
//       uses: DocumentReader
//       with: {path: data.jsonl, batch_size: 32}
//     - name: writer
//       uses: DocumentWriter
//       needs: reader            # a name or a list; `gateway` is the start
//       replicas: 1
//       when: {tags.label: {$gte: 3}}
//       env: {OMP_NUM_THREADS: "1"}
//       resources: {requests: {cpu: 2, memory: 4Gi}}   # for `flow export`
//
// `${{ ENV.NAME }}` in any value is replaced by the environment variable.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "docarray/value.hpp"
#include "docflow/error.hpp"

namespace docflow {

class PluginRegistry;

struct ExecutorConfig {
  std::string name, uses;
  docarray::Value with;  // a map, or null
  std::map<std::string, Location> with_locations;
  std::vector<std::string> needs;  // never empty after parsing: previous executor, or "gateway"
  int replicas = 1;
  docarray::Value when;  // null: every document
  std::map<std::string, std::string> env;
  // A remote executor (Jina's `external: true`): "host:port" per replica,
  // from `host` + `port` or `hosts`. It runs elsewhere (`flow executor`);
  // this flow sends it requests and events (see remote_executor.hpp).
  // Jina's shards: N parts of the executor, each with its own workspace
  // (NAME-0, NAME-1, ...) or, remote, its own address (in shard order).
  // polling per endpoint ("*": the default): "ANY" sends a request to one
  // shard (/index: each document to the shard its id hashes to), "ALL" to
  // every shard, merging the answers by document and their matches by score.
  int shards = 1;
  std::map<std::string, std::string> polling = {{"*", "ANY"}};
  std::vector<std::string> remote;
  // A remote executor with shards: each shard's addresses (its replicas),
  // in shard order (`hosts: [[a:p, b:p], [c:p, d:p]]`, or one each).
  std::vector<std::vector<std::string>> shard_hosts;
  // In a child process of its own (docflow/isolation.hpp), started again
  // after a crash at most `restarts` times.
  bool isolate = false;
  int restarts = 3;
  // Kubernetes resources for `flow export` ("requests"/"limits" -> "cpu" -> "2").
  std::map<std::string, std::map<std::string, std::string>> resources;
  int timeout_ready_ms = 600000;  // a remote executor must answer /status within this at open
  int timeout_send_ms = 600000;   // and each request within this
  // The bearer token a remote executor's `flow executor --token-file` wants:
  // this file's one line (the default: DOCFLOW_TOKEN, as for `flow post`).
  std::string token_file;
  Location where, uses_where, with_where, needs_where, when_where, replicas_where, remote_where, shards_where, isolate_where;
};

// What `flow serve` listens on: Jina's flow-level `with` keys. docflow
// serves Jina's HTTP API only; `protocol: grpc` or `websocket` is refused.
struct ServeConfig {
  std::string host = "127.0.0.1";  // safe by default: loopback only
  int port = 12345;                // also Jina's older name `port_expose`; 0 picks a free port
  bool cors = false;
  int timeout_send_ms = -1;        // a request not answered in time gets 504; -1: no limit
  int timeout_ready_ms = 600000;   // opening the executors; -1: wait forever (Jina's default is 600000)
  bool monitoring = false;         // Prometheus text at /metrics on port_monitoring
  int port_monitoring = 0;         // 0 picks a free port
};

struct FlowConfig {
  std::string file;  // as given; "<string>" for text
  std::string dir;   // the file's folder, for relative paths
  std::string name;
  std::string workspace = "runs";
  int prefetch = 8;
  int threads = 0;  // 0: one per core, and at least the replicas of the most replicated executor
  // Training checkpoints kept: the flow's state after each of the last N
  // epochs, for `flow run --resume` (0: none). See checkpoint.hpp.
  int checkpoints = 0;
  std::vector<std::string> plugins;
  ServeConfig serve;
  std::vector<ExecutorConfig> executors;
  Location where, plugins_where;

  const ExecutorConfig* find(const std::string& executor) const;
};

// A command-line override, "executors.NAME.with.KEY=VALUE", the short
// "NAME.KEY=VALUE", or "with.KEY=VALUE" for the flow's own settings.
struct Override {
  std::string assignment;
};

FlowConfig parse_flow_file(const std::string& path, const std::vector<Override>& overrides = {});
FlowConfig parse_flow_text(const std::string& yaml, const std::string& name = "<string>",
                           const std::vector<Override>& overrides = {});

// Checks what needs the plugins: every `uses` exists, every `with` matches its
// executor's schema (types, ranges, required), at most one source. Throws
// ConfigError at the offending key. The graph is checked by FlowGraph.
void validate_flow(const FlowConfig& config, const PluginRegistry& plugins);

// The executor alone, as the one-executor flow that a process of its own
// serves (an isolated executor, an exported service): its uses, parameters
// and environment, first after the gateway; not its replicas, shards,
// filter or addresses, which stay with the flow that sends it requests.
ExecutorConfig standalone(const ExecutorConfig& executor);

// The resolved flow (overrides and environment applied) as YAML, for the run folder.
std::string to_yaml(const FlowConfig& config);

}  // namespace docflow
