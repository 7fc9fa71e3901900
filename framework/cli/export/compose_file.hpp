#pragma once
// A deployment plan as one Docker Compose file: a service per executor (per
// shard) with its replicas, health checks with `flow ping`, the gateway
// waiting for them; each service's flow file beside it in config/.
#include "kubernetes_manifests.hpp"

namespace docflow::cli {

struct ComposeOptions {
  std::string image;
  int gateway_port = kServicePort;  // published on the host
};

// docker-compose.yml and config/NAME.yml, as file name -> content.
std::map<std::string, std::string> compose_serving(const ServingPlan& plan, const ComposeOptions& options);
std::map<std::string, std::string> compose_training(const TrainingPlan& plan, const ComposeOptions& options);

// Kubernetes quantities in compose's units: cpu "500m" -> "0.5", memory "4Gi" -> "4g".
std::string compose_cpus(const std::string& quantity);
std::string compose_memory(const std::string& quantity);

}  // namespace docflow::cli
