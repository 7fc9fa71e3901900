#pragma once
// A deployment plan as Kubernetes objects, one YAML file per service
// (ConfigMap + Deployment + Service) and the namespace, for `kubectl apply
// -f OUT/`; a batch flow as a Kubeflow PyTorchJob and, for clusters without
// the training operator, an indexed Job with a headless Service.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deployment_plan.hpp"

namespace docflow::cli {

using Manifest = nlohmann::ordered_json;
using ManifestFiles = std::map<std::string, std::vector<Manifest>>;  // file name -> its documents

struct KubernetesOptions {
  std::string ns;          // the namespace (default: the flow's name)
  std::string image;       // the image every container runs (see Dockerfile)
  std::string data_claim;  // a PersistentVolumeClaim mounted at /data in every pod; empty: an emptyDir
};

// The in-cluster address of a service: NAME.NAMESPACE.svc.
std::string cluster_address(const std::string& service, const std::string& ns);

ManifestFiles kubernetes_serving(const ServingPlan& plan, const KubernetesOptions& options);
ManifestFiles kubernetes_training(const TrainingPlan& plan, const KubernetesOptions& options);

}  // namespace docflow::cli
