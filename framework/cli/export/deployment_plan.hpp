#pragma once
// What a flow becomes on an orchestrator, before any manifest syntax: the
// one model that `flow export kubernetes` and `flow export compose` both
// write out, so that the two can never describe different topologies.
//
// A served flow (no source) becomes one service per executor, per shard
// (Jina's layout): each runs `flow serve` of a one-executor flow (its
// resolved configuration) on port 8080 in `replicas` pods, and the gateway
// runs the flow itself with every executor made remote at the services'
// addresses (replicas as connections to the Service, shards in order).
// A batch flow (a source: a training or indexing job) becomes N ranks of
// `flow run` with torchrun's environment (see process_group.hpp).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "docflow/flow.hpp"

namespace docflow::cli {

constexpr int kServicePort = 8080;
constexpr int kMonitoringPort = 9090;
constexpr int kMasterPort = 29500;
constexpr const char* kConfigDir = "/etc/docflow";  // where each service's flow file is mounted
constexpr const char* kConfigFile = "/etc/docflow/flow.yml";
constexpr const char* kDataDir = "/data";  // the working directory: runs/, models, indexes

struct ServiceUnit {
  std::string name;       // a DNS-1123 label: the Deployment, Service and compose service
  std::string executor;   // the flow's executor name; empty for the gateway
  int shard = -1;         // -1: not sharded
  int replicas = 1;
  std::string flow_yaml;  // the flow file it serves (the ConfigMap's content)
  std::vector<std::string> command;
  bool gateway = false;
  bool monitoring = false;
  std::map<std::string, std::map<std::string, std::string>> resources;
};

struct ServingPlan {
  std::string flow;  // the flow's name as a DNS label
  std::vector<ServiceUnit> units;  // the gateway first
  std::vector<std::string> warnings;
};

struct TrainingPlan {
  std::string flow;
  int nodes = 2;           // pods (compose services), one per node
  int nproc_per_node = 1;  // 1: each pod is a rank; more: each pod runs the launcher of that many ranks
  std::string flow_yaml;  // the whole resolved flow
  std::vector<std::string> command;
  std::map<std::string, std::map<std::string, std::string>> resources;
  std::vector<std::string> warnings;
};

// A name as a Kubernetes object name: lower case, [a-z0-9-], at most 63
// characters, starting and ending alphanumeric ("text_encoder" -> "text-encoder").
std::string dns_label(const std::string& name);

// Every service's address as `address_of(unit)` gives it ("NAME.NS.svc" on
// Kubernetes, "NAME" in compose) with port 8080. Throws naming the
// executors when two names map to the same label.
ServingPlan plan_serving(const Flow& flow, const std::function<std::string(const std::string&)>& address_of);
TrainingPlan plan_training(const Flow& flow, int nodes, int nproc_per_node = 1);

// True when the flow has a source (a batch run: `flow run`), false when it is served.
bool is_batch_flow(const Flow& flow);

}  // namespace docflow::cli
