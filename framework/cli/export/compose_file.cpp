#include "compose_file.hpp"

#include <cstdio>

#include "docflow/error.hpp"
#include "yaml_out.hpp"

namespace docflow::cli {
namespace {

Manifest resources_of(const std::map<std::string, std::map<std::string, std::string>>& resources) {
  Manifest out = Manifest::object();
  for (const auto& [kind, amounts] : resources) {
    const char* section = kind == "limits" ? "limits" : "reservations";
    for (const auto& [resource, amount] : amounts) {
      if (resource == "cpu") out[section]["cpus"] = compose_cpus(amount);
      else if (resource == "memory") out[section]["memory"] = compose_memory(amount);
      // Other resources (nvidia.com/gpu, ephemeral-storage) have no plain compose equivalent.
    }
  }
  return out;
}

Manifest base_service(const std::string& config_file, const std::vector<std::string>& command, const ComposeOptions& o) {
  return {{"image", o.image},
          {"command", command},
          {"working_dir", kDataDir},
          // The data folder (runs, models, indexes) is ./data beside this file
          // unless DOCFLOW_DATA names another.
          {"volumes", Manifest::array({"./config/" + config_file + ":" + kConfigFile + ":ro", std::string("${DOCFLOW_DATA:-./data}:") + kDataDir})}};
}

}  // namespace

std::string compose_cpus(const std::string& q) {
  if (!q.empty() && q.back() == 'm') {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", std::stod(q.substr(0, q.size() - 1)) / 1000.0);
    return buf;
  }
  return q;
}

std::string compose_memory(const std::string& q) {
  static const std::vector<std::pair<std::string, std::string>> units = {{"Ki", "k"}, {"Mi", "m"}, {"Gi", "g"}, {"Ti", "t"},
                                                                         {"k", "k"},  {"M", "m"},  {"G", "g"},  {"T", "t"}};
  for (const auto& [k8s, docker] : units)
    if (q.size() > k8s.size() && q.compare(q.size() - k8s.size(), k8s.size(), k8s) == 0) return q.substr(0, q.size() - k8s.size()) + docker;
  if (!q.empty() && std::isdigit(static_cast<unsigned char>(q.back()))) return q;  // bytes
  throw Error("memory: " + q + " has no Docker Compose equivalent (use Ki, Mi, Gi or Ti)");
}

std::map<std::string, std::string> compose_serving(const ServingPlan& plan, const ComposeOptions& o) {
  std::map<std::string, std::string> files;
  Manifest services = Manifest::object();
  const std::string ping = "http://127.0.0.1:" + std::to_string(kServicePort);
  for (const auto& u : plan.units) {
    Manifest s = base_service(u.name + ".yml", u.command, o);
    s["healthcheck"] = {{"test", {"CMD", "flow", "ping", ping, "--timeout-ms", "3000"}},
                        {"interval", "5s"}, {"timeout", "5s"}, {"retries", 3}, {"start_period", "600s"}};
    s["stop_grace_period"] = "60s";
    Manifest deploy = {{"replicas", u.replicas}};
    if (!u.resources.empty()) deploy["resources"] = resources_of(u.resources);
    s["deploy"] = deploy;
    if (u.gateway) {
      s["ports"] = Manifest::array({std::to_string(o.gateway_port) + ":" + std::to_string(kServicePort)});
      Manifest after = Manifest::object();
      for (const auto& other : plan.units)
        if (!other.gateway) after[other.name] = {{"condition", "service_healthy"}};
      if (!after.empty()) s["depends_on"] = after;
    }
    services[u.name] = s;
    files["config/" + u.name + ".yml"] = u.flow_yaml;
  }
  files["docker-compose.yml"] = "# flow " + plan.flow + ", written by `flow export compose`: docker compose up\n" +
                                yaml_documents({Manifest{{"services", services}}});
  return files;
}

std::map<std::string, std::string> compose_training(const TrainingPlan& plan, const ComposeOptions& o) {
  std::map<std::string, std::string> files;
  Manifest services = Manifest::object();
  for (int r = 0; r < plan.nodes; ++r) {
    Manifest s = base_service(plan.flow + ".yml", plan.command, o);
    s["hostname"] = "rank-" + std::to_string(r);
    if (plan.nproc_per_node > 1)  // each service the launcher of its node's ranks, told as torchrun is
      s["environment"] = {{"PET_NPROC_PER_NODE", std::to_string(plan.nproc_per_node)}, {"PET_NNODES", std::to_string(plan.nodes)},
                          {"PET_NODE_RANK", std::to_string(r)},
                          {"PET_MASTER_ADDR", "rank-0"},
                          {"PET_MASTER_PORT", std::to_string(kMasterPort)}};
    else
      s["environment"] = {{"RANK", std::to_string(r)},          {"WORLD_SIZE", std::to_string(plan.nodes)},
                          {"LOCAL_RANK", "0"},                  {"LOCAL_WORLD_SIZE", "1"},
                          {"MASTER_ADDR", "rank-0"},            {"MASTER_PORT", std::to_string(kMasterPort)}};
    if (!plan.resources.empty()) s["deploy"] = {{"resources", resources_of(plan.resources)}};
    services["rank-" + std::to_string(r)] = s;
  }
  files["config/" + plan.flow + ".yml"] = plan.flow_yaml;
  files["docker-compose.yml"] = "# flow " + plan.flow + " as " + std::to_string(plan.nodes * plan.nproc_per_node) +
                                " ranks, written by `flow export compose`: docker compose up\n" +
                                yaml_documents({Manifest{{"services", services}}});
  return files;
}

}  // namespace docflow::cli
