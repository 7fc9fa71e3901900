// `flow export kubernetes FILE OUT [--namespace NS] [--image IMAGE] [--data-claim PVC] [--nodes N] [--nproc-per-node P] [--set K=V]...`
// `flow export compose FILE OUT [--image IMAGE] [--port P] [--nodes N] [--nproc-per-node P] [--set K=V]...`
// A served flow becomes a service per executor (per shard) and a gateway
// (Jina's `flow.to_kubernetes_yaml` / `to_docker_compose_yaml`); a batch flow
// (a source, as a training flow has) becomes a distributed job of N ranks.
// See export/deployment_plan.hpp for the topology both formats share.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "export/compose_file.hpp"
#include "export/kubernetes_manifests.hpp"
#include "export/yaml_out.hpp"
#include "options.hpp"

namespace docflow::cli {
namespace {

constexpr const char* kDefaultImage = "docflow:latest";

// Writes every file under `out`, which must be new or empty: a manifest
// left there by an earlier export would be applied with the new ones.
void write_files(const std::filesystem::path& out, const std::map<std::string, std::string>& files) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && !std::filesystem::is_empty(out, ec))
    throw Error(out.string() + " is not empty: give a new folder (a file left there by an earlier export would be applied with the new ones)");
  for (const auto& [name, text] : files) {
    const auto path = out / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream f(path);
    f << text;
    if (!f.flush()) throw Error("cannot write " + path.string());
  }
}

}  // namespace

int export_command(const Args& args) {
  po::options_description opts("flow export kubernetes|compose FILE OUT [options]");
  opts.add_options()("help,h", "this help")("set", po::value<std::vector<std::string>>(), "override a value, as for flow run")(
      "namespace", po::value<std::string>(), "kubernetes: the namespace (default: the flow's name)")(
      "image", po::value<std::string>()->default_value(kDefaultImage), "the image every container runs (see the Dockerfile)")(
      "data-claim", po::value<std::string>(), "kubernetes: a PersistentVolumeClaim mounted at /data in every pod (default: an emptyDir)")(
      "port", po::value<int>()->default_value(kServicePort), "compose: the host port the gateway is published on")(
      "nodes", po::value<int>()->default_value(2), "a batch flow: the number of pods (nodes)")(
      "nproc-per-node", po::value<int>()->default_value(1),
      "a batch flow: ranks per pod (more than 1: each pod runs the launcher, as torchrun in a PyTorchJob with nprocPerNode)")(
      "format", po::value<std::string>(), "kubernetes or compose")("file", po::value<std::string>(), "flow file")(
      "out", po::value<std::string>(), "the folder to write");
  po::positional_options_description pos;
  pos.add("format", 1).add("file", 1).add("out", 1);
  try {
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts,
                   "Writes what runs the flow on Kubernetes (kubectl apply -f OUT/) or Docker Compose (docker compose -f OUT/docker-compose.yml up).\n"
                   "A served flow: a service per executor and shard, and the gateway; a batch flow: a distributed job."))
      return kOk;
    if (!vm.count("out")) throw po::error("needs kubernetes|compose, a flow FILE and an OUT folder");
    const std::string format = vm["format"].as<std::string>();
    if (format != "kubernetes" && format != "compose")
      throw po::error("exports to `kubernetes` or `compose`, found '" + format + "'");
    // Validated as `flow run` would: an export that cannot start is refused here.
    const Flow flow = Flow::load(vm["file"].as<std::string>(), overrides_of(vm));
    const std::string image = vm["image"].as<std::string>();
    const int nodes = vm["nodes"].as<int>(), nproc = vm["nproc-per-node"].as<int>();
    const std::string ranks = std::to_string(nodes * nproc) + " ranks" +
                              (nproc > 1 ? " (" + std::to_string(nodes) + " pods of " + std::to_string(nproc) + ")" : "");
    std::map<std::string, std::string> files;
    std::vector<std::string> warnings;
    std::string what;
    if (format == "kubernetes") {
      KubernetesOptions o;
      o.ns = vm.count("namespace") ? vm["namespace"].as<std::string>() : dns_label(flow.config().name);
      if (dns_label(o.ns) != o.ns) throw Error("--namespace " + o.ns + " is not a Kubernetes name (lower case letters, digits and '-')");
      o.image = image;
      if (vm.count("data-claim")) o.data_claim = vm["data-claim"].as<std::string>();
      ManifestFiles manifests;
      if (is_batch_flow(flow)) {
        TrainingPlan plan = plan_training(flow, nodes, nproc);
        warnings = plan.warnings;
        manifests = kubernetes_training(plan, o);
        what = ranks + ": apply pytorchjob.yml (Kubeflow's training operator) or job.yml (an indexed Job), not both";
      } else {
        ServingPlan plan = plan_serving(flow, [&](const std::string& s) { return cluster_address(s, o.ns); });
        warnings = plan.warnings;
        manifests = kubernetes_serving(plan, o);
        what = std::to_string(plan.units.size() - 1) + " executor services and the gateway: kubectl apply -f " + vm["out"].as<std::string>();
      }
      for (const auto& [name, docs] : manifests) files[name] = yaml_documents(docs);
    } else {
      ComposeOptions o;
      o.image = image;
      o.gateway_port = vm["port"].as<int>();
      if (is_batch_flow(flow)) {
        TrainingPlan plan = plan_training(flow, nodes, nproc);
        warnings = plan.warnings;
        files = compose_training(plan, o);
        what = ranks;
      } else {
        ServingPlan plan = plan_serving(flow, [](const std::string& s) { return s; });
        warnings = plan.warnings;
        files = compose_serving(plan, o);
        what = std::to_string(plan.units.size() - 1) + " executor services and the gateway on port " + std::to_string(o.gateway_port);
      }
      what += ": docker compose -f " + (std::filesystem::path(vm["out"].as<std::string>()) / "docker-compose.yml").string() + " up";
    }
    write_files(vm["out"].as<std::string>(), files);
    for (const auto& w : warnings) std::cerr << "flow export: warning: " << w << "\n";
    std::cout << "wrote " << files.size() << " files to " << vm["out"].as<std::string>() << " (" << what << ")\n";
    return kOk;
  } catch (...) {
    return setup_failed("export");
  }
}

}  // namespace docflow::cli
