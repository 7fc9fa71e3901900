#include "deployment_plan.hpp"

#include <cctype>

#include "docflow/error.hpp"
#include "docflow/plugin_registry.hpp"

namespace docflow::cli {
namespace {

// Relative plugin folders are found from the flow file's folder, which in a
// pod is the ConfigMap's mount: say so rather than export a flow that cannot
// find its plugins there.
void check_plugins(const FlowConfig& config, std::vector<std::string>& warnings) {
  for (const auto& p : config.plugins)
    if (!p.empty() && p.front() != '/')
      warnings.push_back("the flow's plugins folder '" + p + "' is relative to the flow file, which is " + kConfigFile +
                         " in the exported services: give an absolute path to where the image holds the plugins");
}

// The flow-level settings every exported flow file keeps.
FlowConfig flow_settings(const FlowConfig& config, const std::string& name) {
  FlowConfig out;
  out.name = name;
  out.workspace = config.workspace;
  out.prefetch = config.prefetch;
  out.threads = config.threads;
  out.plugins = config.plugins;
  return out;
}

ServiceUnit executor_unit(const FlowConfig& config, const ExecutorConfig& e, const std::string& name, int shard) {
  FlowConfig one = flow_settings(config, name);
  one.executors.push_back(standalone(e));
  ServiceUnit u;
  u.name = name;
  u.executor = e.name;
  u.shard = shard;
  u.replicas = e.replicas;  // of each shard
  u.flow_yaml = "# " + e.name + (shard >= 0 ? " shard " + std::to_string(shard) : std::string()) +
                " of flow " + config.name + ", written by `flow export`\n" + to_yaml(one);
  u.command = {"flow", "serve", kConfigFile, "--host", "0.0.0.0", "--port", std::to_string(kServicePort)};
  u.resources = e.resources;
  return u;
}

}  // namespace

std::string dns_label(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) out += static_cast<char>(std::tolower(u));
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty() || !std::isalpha(static_cast<unsigned char>(out.front()))) out = "x-" + out;
  if (out.size() > 63) out.resize(63);
  return out;
}

bool is_batch_flow(const Flow& flow) {
  for (const auto& e : flow.config().executors)
    if (e.remote.empty() && flow.plugins().find(e.uses).is_source) return true;
  return false;
}

ServingPlan plan_serving(const Flow& flow, const std::function<std::string(const std::string&)>& address_of) {
  const FlowConfig& config = flow.config();
  ServingPlan plan;
  plan.flow = dns_label(config.name);
  check_plugins(config, plan.warnings);
  FlowConfig gateway = config;
  gateway.serve.host = ServeConfig().host;  // the command line says where it listens
  gateway.serve.port = ServeConfig().port;
  if (config.serve.monitoring) gateway.serve.port_monitoring = kMonitoringPort;
  std::map<std::string, std::string> taken = {{"gateway", "the gateway"}};
  std::vector<ServiceUnit> executors;
  for (auto& e : gateway.executors) {
    if (!e.remote.empty()) continue;  // already served elsewhere: the gateway keeps its addresses
    const ExecutorConfig original = e;
    e.remote.clear();
    e.shard_hosts.clear();
    for (int s = 0; s < e.shards; ++s) {
      const std::string name = dns_label(e.name) + (e.shards > 1 ? "-" + std::to_string(s) : "");
      auto [it, fresh] = taken.emplace(name, "executor '" + e.name + "'");
      if (!fresh)
        throw Error("executor '" + e.name + "' and " + it->second + " both become the service '" + name +
                    "' (Kubernetes names are lower case letters, digits and '-'): rename one of them");
      executors.push_back(executor_unit(config, original, name, e.shards > 1 ? s : -1));
      e.remote.push_back(address_of(name) + ":" + std::to_string(kServicePort));
      if (e.shards > 1) e.shard_hosts.push_back({e.remote.back()});  // its replicas behind one Service
    }
    // Remote now: its parameters, environment and resources are the service's.
    e.with = docarray::Value();
    e.env.clear();
    e.resources.clear();
  }
  ServiceUnit g;
  g.name = "gateway";
  g.gateway = true;
  g.monitoring = config.serve.monitoring;
  g.flow_yaml = "# the gateway of flow " + config.name + ", written by `flow export`\n" + to_yaml(gateway);
  g.command = {"flow", "serve", kConfigFile, "--host", "0.0.0.0", "--port", std::to_string(kServicePort)};
  plan.units.push_back(std::move(g));
  for (auto& u : executors) plan.units.push_back(std::move(u));
  return plan;
}

TrainingPlan plan_training(const Flow& flow, int nodes, int nproc_per_node) {
  const FlowConfig& config = flow.config();
  if (nodes < 1) throw Error("--nodes expects at least 1, found " + std::to_string(nodes));
  if (nproc_per_node < 1) throw Error("--nproc-per-node expects at least 1, found " + std::to_string(nproc_per_node));
  TrainingPlan plan;
  plan.flow = dns_label(config.name);
  plan.nodes = nodes;
  plan.nproc_per_node = nproc_per_node;
  check_plugins(config, plan.warnings);
  for (const auto& e : config.executors) {
    if (!e.remote.empty())
      throw Error("executor '" + e.name + "' is remote; a batch flow exports as ranks of `flow run`, each running every executor: "
                  "make it local, or serve it with `flow executor` outside the job");
    if (e.resources.empty()) continue;
    if (!plan.resources.empty())
      throw Error("executors '" + e.name + "' and another both give `resources`: a batch flow runs as one pod per node, "
                  "so give the pod's resources once, on one executor");
    plan.resources = e.resources;
  }
  plan.flow_yaml = "# flow " + config.name + " as a distributed job, written by `flow export`\n" + to_yaml(config);
  plan.command = {"flow", "run", kConfigFile};
  return plan;
}

}  // namespace docflow::cli
