#include "kubernetes_manifests.hpp"

namespace docflow::cli {
namespace {

Manifest metadata(const std::string& name, const KubernetesOptions& o, const Manifest& labels) {
  return {{"name", name}, {"namespace", o.ns}, {"labels", labels}};
}

Manifest labels_of(const std::string& flow, const std::string& component) {
  return {{"app", flow + "-" + component}, {"app.kubernetes.io/part-of", "docflow"}, {"docflow/flow", flow}};
}

Manifest namespace_object(const KubernetesOptions& o) {
  return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", o.ns}, {"labels", {{"app.kubernetes.io/part-of", "docflow"}}}}}};
}

Manifest config_map(const std::string& name, const std::string& flow_yaml, const KubernetesOptions& o, const Manifest& labels) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", metadata(name, o, labels)}, {"data", {{"flow.yml", flow_yaml}}}};
}

Manifest resources_of(const std::map<std::string, std::map<std::string, std::string>>& resources) {
  Manifest r = Manifest::object();
  for (const auto& [kind, amounts] : resources)
    for (const auto& [resource, amount] : amounts) r[kind][resource] = amount;
  return r;
}

Manifest volumes(const std::string& config_map, const KubernetesOptions& o) {
  Manifest data = {{"name", "data"}};
  if (o.data_claim.empty()) data["emptyDir"] = Manifest::object();
  else data["persistentVolumeClaim"] = {{"claimName", o.data_claim}};
  return Manifest::array({{{"name", "config"}, {"configMap", {{"name", config_map}}}}, data});
}

Manifest volume_mounts() {
  return Manifest::array({{{"name", "config"}, {"mountPath", kConfigDir}, {"readOnly", true}}, {{"name", "data"}, {"mountPath", kDataDir}}});
}

Manifest ping_probe(int period, int failures) {
  return {{"exec", {{"command", {"flow", "ping", "http://127.0.0.1:" + std::to_string(kServicePort), "--timeout-ms", "3000"}}}},
          {"periodSeconds", period},
          {"timeoutSeconds", 5},
          {"failureThreshold", failures}};
}

Manifest container(const std::string& name, const std::vector<std::string>& command, const KubernetesOptions& o,
                   const std::map<std::string, std::map<std::string, std::string>>& resources) {
  Manifest c = {{"name", name}, {"image", o.image}, {"imagePullPolicy", "IfNotPresent"}, {"command", command}, {"workingDir", kDataDir}};
  if (!resources.empty()) c["resources"] = resources_of(resources);
  c["volumeMounts"] = volume_mounts();
  return c;
}

Manifest deployment(const ServiceUnit& u, const ServingPlan& plan, const KubernetesOptions& o) {
  const Manifest labels = labels_of(plan.flow, u.name);
  // Each pod's run folder is named after the pod: replicas sharing a
  // --data-claim volume do not write one another's status and log.
  std::vector<std::string> command = u.command;
  command.insert(command.end(), {"--name", "$(POD_NAME)"});
  Manifest c = container(u.gateway ? "gateway" : "executor", command, o, u.resources);
  c["env"] = Manifest::array({{{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}});
  c["ports"] = Manifest::array({{{"name", "http"}, {"containerPort", kServicePort}}});
  if (u.monitoring) c["ports"].push_back({{"name", "metrics"}, {"containerPort", kMonitoringPort}});
  // Loading a model can take minutes: the startup probe gives it ten
  // (timeout_ready's default) before the liveness probe takes over.
  c["startupProbe"] = ping_probe(5, 120);
  c["readinessProbe"] = ping_probe(5, 2);
  c["livenessProbe"] = ping_probe(10, 3);
  // The Service stops sending new requests before the pod is told to stop;
  // then `flow serve` drains what it holds (SIGTERM) within the grace period.
  c["lifecycle"] = {{"preStop", {{"exec", {{"command", {"sleep", "5"}}}}}}};
  Manifest pod = {{"terminationGracePeriodSeconds", 60}, {"containers", Manifest::array({c})}, {"volumes", volumes(u.name + "-flow", o)}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", metadata(u.name, o, labels)},
          {"spec",
           {{"replicas", u.replicas},
            {"selector", {{"matchLabels", {{"app", labels["app"]}}}}},
            {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod}}}}}};
}

Manifest service(const ServiceUnit& u, const ServingPlan& plan, const KubernetesOptions& o) {
  const Manifest labels = labels_of(plan.flow, u.name);
  Manifest ports = Manifest::array({{{"name", "http"}, {"port", kServicePort}, {"targetPort", kServicePort}}});
  if (u.monitoring) ports.push_back({{"name", "metrics"}, {"port", kMonitoringPort}, {"targetPort", kMonitoringPort}});
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", metadata(u.name, o, labels)},
          {"spec", {{"type", "ClusterIP"}, {"selector", {{"app", labels["app"]}}}, {"ports", ports}}}};
}

// torchrun's variables that no operator sets: one process per pod. With
// several, the pod runs the launcher, which sets them for its ranks.
Manifest one_process_per_pod(const TrainingPlan& plan) {
  if (plan.nproc_per_node > 1) return Manifest::array();
  return Manifest::array({{{"name", "LOCAL_RANK"}, {"value", "0"}}, {{"name", "LOCAL_WORLD_SIZE"}, {"value", "1"}}});
}

Manifest rank_pod(const TrainingPlan& plan, const KubernetesOptions& o, const std::string& container_name, Manifest env) {
  Manifest c = container(container_name, plan.command, o, plan.resources);
  c["env"] = std::move(env);
  c["ports"] = Manifest::array({{{"name", "pytorchjob-port"}, {"containerPort", kMasterPort}}});
  // A rank that fails fails the run (the others time out in their next
  // collective): restart the job with `flow run --resume` rather than one pod.
  return {{"restartPolicy", "Never"}, {"containers", Manifest::array({c})}, {"volumes", volumes(plan.flow + "-flow", o)}};
}

}  // namespace

std::string cluster_address(const std::string& service, const std::string& ns) { return service + "." + ns + ".svc"; }

ManifestFiles kubernetes_serving(const ServingPlan& plan, const KubernetesOptions& o) {
  ManifestFiles files;
  files["namespace.yml"] = {namespace_object(o)};
  for (const auto& u : plan.units)
    files[u.name + ".yml"] = {config_map(u.name + "-flow", u.flow_yaml, o, labels_of(plan.flow, u.name)), deployment(u, plan, o),
                              service(u, plan, o)};
  return files;
}

ManifestFiles kubernetes_training(const TrainingPlan& plan, const KubernetesOptions& o) {
  ManifestFiles files;
  const Manifest labels = labels_of(plan.flow, "ranks");
  const Manifest config = config_map(plan.flow + "-flow", plan.flow_yaml, o, labels);

  // Kubeflow's training operator sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE
  // and RANK in every replica; its container must be called "pytorch". With
  // nprocPerNode (operator v1.7 on) it sets torchrun's launcher variables
  // too (PET_NPROC_PER_NODE, PET_NNODES, PET_NODE_RANK, ...), which make
  // `flow run` the launcher of that many ranks, as torchrun would be.
  Manifest specs = {{"Master", {{"replicas", 1}, {"restartPolicy", "Never"},
                                {"template", {{"metadata", {{"labels", labels}}}, {"spec", rank_pod(plan, o, "pytorch", one_process_per_pod(plan))}}}}}};
  if (plan.nodes > 1)
    specs["Worker"] = {{"replicas", plan.nodes - 1}, {"restartPolicy", "Never"},
                       {"template", {{"metadata", {{"labels", labels}}}, {"spec", rank_pod(plan, o, "pytorch", one_process_per_pod(plan))}}}};
  Manifest spec = {{"runPolicy", {{"backoffLimit", 0}, {"cleanPodPolicy", "None"}}}, {"pytorchReplicaSpecs", specs}};
  if (plan.nproc_per_node > 1) spec["nprocPerNode"] = std::to_string(plan.nproc_per_node);  // a string in the CRD
  Manifest job = {{"apiVersion", "kubeflow.org/v1"},
                  {"kind", "PyTorchJob"},
                  {"metadata", metadata(plan.flow, o, labels)},
                  {"spec", spec}};
  files["pytorchjob.yml"] = {namespace_object(o), config, job};

  // Without the operator: an indexed Job (pod i is rank i, named FLOW-i) and
  // a headless Service that gives rank 0 the address the others dial.
  // With several processes per pod, pod i is node i of torchrun's launcher
  // variables instead.
  const std::string master = plan.flow + "-0." + cluster_address(plan.flow, o.ns);
  const Manifest index = {{"fieldRef", {{"fieldPath", "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}};
  const bool launcher = plan.nproc_per_node > 1;
  const std::string prefix = launcher ? "PET_" : "";
  Manifest env = Manifest::array();
  if (launcher) {
    env.push_back({{"name", "PET_NPROC_PER_NODE"}, {"value", std::to_string(plan.nproc_per_node)}});
    env.push_back({{"name", "PET_NNODES"}, {"value", std::to_string(plan.nodes)}});
    env.push_back({{"name", "PET_NODE_RANK"}, {"valueFrom", index}});
  } else {
    env.push_back({{"name", "RANK"}, {"valueFrom", index}});
    env.push_back({{"name", "WORLD_SIZE"}, {"value", std::to_string(plan.nodes)}});
  }
  env.push_back({{"name", prefix + "MASTER_ADDR"}, {"value", master}});
  env.push_back({{"name", prefix + "MASTER_PORT"}, {"value", std::to_string(kMasterPort)}});
  for (auto& v : one_process_per_pod(plan)) env.push_back(v);
  Manifest pod = rank_pod(plan, o, "flow", env);
  pod["subdomain"] = plan.flow;
  Manifest headless = {{"apiVersion", "v1"},
                       {"kind", "Service"},
                       {"metadata", metadata(plan.flow, o, labels)},
                       {"spec",
                        {{"clusterIP", "None"},
                         {"publishNotReadyAddresses", true},
                         {"selector", {{"app", labels["app"]}}},
                         {"ports", Manifest::array({{{"name", "store"}, {"port", kMasterPort}, {"targetPort", kMasterPort}}})}}}};
  Manifest indexed = {{"apiVersion", "batch/v1"},
                      {"kind", "Job"},
                      {"metadata", metadata(plan.flow, o, labels)},
                      {"spec",
                       {{"completionMode", "Indexed"},
                        {"completions", plan.nodes},
                        {"parallelism", plan.nodes},
                        {"backoffLimit", 0},
                        {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod}}}}}};
  files["job.yml"] = {namespace_object(o), config, headless, indexed};
  return files;
}

}  // namespace docflow::cli
