#pragma once
// What `flow export kubernetes` describes, started as local processes: each
// Deployment's container command, with its ConfigMap's flow file written to
// a folder of its own (the pod's /etc/docflow), run from one data folder
// (the pods' /data), on a loopback port instead of 0.0.0.0:8080, one process
// per replica. The gateway's flow file gets the services' in-cluster
// addresses rewritten to those processes (a Service's replicas become a
// list of addresses, as kube-proxy spreads connections over them); nothing
// else is changed. Everything it started is stopped at the end, the
// gateway first.
#include <yaml-cpp/yaml.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "detached_service.hpp"

namespace docflow::testing {

class ExportedTopology {
 public:
  ExportedTopology(const std::filesystem::path& manifests, const std::filesystem::path& data, const std::filesystem::path& pods)
      : data_(data), pods_(pods) {
    std::map<std::string, std::string> config_maps;  // name -> flow.yml
    std::vector<YAML::Node> deployments;
    for (const auto& entry : std::filesystem::directory_iterator(manifests))
      for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
        const std::string kind = doc["kind"].as<std::string>();
        if (kind == "ConfigMap") config_maps[doc["metadata"]["name"].as<std::string>()] = doc["data"]["flow.yml"].as<std::string>();
        if (kind == "Deployment") deployments.push_back(doc);
      }
    BOOST_REQUIRE_MESSAGE(!deployments.empty(), "no Deployment in " << manifests);
    std::string ns;
    const YAML::Node* gateway = nullptr;
    std::map<std::string, std::vector<std::string>> addresses;  // service -> its processes
    for (const YAML::Node& d : deployments) {
      const std::string name = d["metadata"]["name"].as<std::string>();
      ns = d["metadata"]["namespace"].as<std::string>();
      if (name == "gateway") {
        gateway = &d;
        continue;
      }
      for (int r = 0; r < d["spec"]["replicas"].as<int>(); ++r) {
        const std::string pod = name + "-" + std::to_string(r);
        executors_.push_back(start(d, pod, config_maps));
        addresses[name].push_back(executors_.back()->address());
      }
    }
    BOOST_REQUIRE_MESSAGE(gateway, "no gateway Deployment in " << manifests);
    for (const auto& [service, list] : addresses) {
      std::string joined;
      for (const auto& a : list) joined += (joined.empty() ? "" : ", ") + a;
      rewrites_[service + "." + ns + ".svc:8080"] = joined;
    }
    gateway_ = start(*gateway, "gateway", config_maps);
  }
  ~ExportedTopology() {
    gateway_.reset();
    while (!executors_.empty()) executors_.pop_back();
  }

  const DetachedService& gateway() const { return *gateway_; }
  std::size_t processes() const { return executors_.size() + (gateway_ ? 1 : 0); }

 private:
  std::unique_ptr<DetachedService> start(const YAML::Node& deployment, const std::string& pod,
                                         const std::map<std::string, std::string>& config_maps) {
    const YAML::Node spec = deployment["spec"]["template"]["spec"];
    const YAML::Node container = spec["containers"][0];
    std::string config_map;
    for (const auto& v : spec["volumes"])
      if (v["configMap"]) config_map = v["configMap"]["name"].as<std::string>();
    BOOST_REQUIRE_MESSAGE(config_maps.count(config_map), pod << ": no ConfigMap " << config_map);
    std::string flow = config_maps.at(config_map);
    for (const auto& [from, to] : rewrites_)
      for (std::size_t at = flow.find(from); at != std::string::npos; at = flow.find(from, at + to.size())) flow.replace(at, from.size(), to);
    const std::filesystem::path etc = pods_ / pod / "etc-docflow";
    std::filesystem::create_directories(etc);
    std::ofstream(etc / "flow.yml") << flow;

    BOOST_REQUIRE_EQUAL(container["workingDir"].as<std::string>(), "/data");
    std::vector<std::string> argv = container["command"].as<std::vector<std::string>>();
    BOOST_REQUIRE_EQUAL(argv.front(), "flow");
    std::string command = "cd " + data_.string() + " && " + DOCFLOW_FLOW_EXE;
    for (std::size_t i = 1; i < argv.size(); ++i) {
      std::string a = argv[i];
      if (a.rfind("/etc/docflow/", 0) == 0) a = (etc / a.substr(13)).string();
      else if (a == "$(POD_NAME)") a = pod;  // Kubernetes expands it from the pod's env (metadata.name)
      else if (i > 1 && argv[i - 1] == "--host") a = "127.0.0.1";
      else if (i > 1 && argv[i - 1] == "--port") a = "0";
      command += " '" + a + "'";
    }
    // --detach so that the test learns its port from the run's status.json.
    command += " --detach";
    return std::make_unique<DetachedService>(command, (data_ / "runs" / pod / "status.json").string());
  }

  std::filesystem::path data_, pods_;
  std::map<std::string, std::string> rewrites_;
  std::vector<std::unique_ptr<DetachedService>> executors_;
  std::unique_ptr<DetachedService> gateway_;
};

}  // namespace docflow::testing
