// `flow export`: what it writes for a served flow (a service per executor
// and shard, the gateway with their addresses) and for a batch flow (a
// PyTorchJob and an indexed Job), checked against the Kubernetes API schema
// and by docker-compose itself; and the exports it refuses.
#include <yaml-cpp/yaml.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"

using namespace docflow::testing;
namespace fs = std::filesystem;

namespace {

const std::string kFlow = DOCFLOW_FLOW_EXE;
const std::string kValidator = std::string(EXPORT_TEST_DIR) + "/validate_manifests.js";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const char* kServed = R"(jtype: Flow
with: {name: Shop_Search, monitoring: true}
executors:
  - name: pass
    replicas: 2
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}
  - name: indexer
    uses: SimpleIndexer
    shards: 2
    polling: {/index: ANY, /search: ALL, "*": ANY}
)";

const char* kBatch = R"(jtype: Flow
with: {name: train}
executors:
  - name: reader
    uses: DocumentReader
    with: {path: data.jsonl}
  - name: step
    resources: {limits: {cpu: 4}}
)";

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.file(name)) << text;
  return dir.file(name);
}

// The Kubernetes schema check over every manifest in `out`.
CommandResult validate(const fs::path& out) {
  BOOST_REQUIRE_MESSAGE(fs::exists(std::string(EXPORT_TEST_DIR) + "/node_modules/kubernetes-models"),
                        "tests/export/node_modules is missing: scripts/setup.sh installs it (npm ci in tests/export)");
  std::string files;
  for (const auto& e : fs::directory_iterator(out))
    if (e.path().extension() == ".yml") files += " " + e.path().string();
  return run_command("node " + kValidator + files);
}

YAML::Node document(const fs::path& file, const std::string& kind) {
  for (const YAML::Node& d : YAML::LoadAllFromFile(file.string()))
    if (d["kind"].as<std::string>() == kind) return d;
  BOOST_FAIL("no " << kind << " in " << file);
  return {};
}

// The environment a container gets: name -> value, or the field it comes from.
std::map<std::string, std::string> environment_of(const YAML::Node& container) {
  std::map<std::string, std::string> env;
  for (const auto& v : container["env"])
    env[v["name"].as<std::string>()] = v["value"] ? v["value"].as<std::string>() : v["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>();
  return env;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(export_manifests)

BOOST_AUTO_TEST_CASE(a_served_flow_is_a_service_per_executor_and_shard_that_the_kubernetes_schema_accepts) {
  TempDir dir;
  const fs::path out = dir.path() / "k8s";
  auto r = run_command(kFlow + " export kubernetes " + write(dir, "flow.yml", kServed) + " " + out.string() + " --image registry.local/docflow:1");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "wrote 5 files"), r.output);
  for (const char* f : {"namespace.yml", "gateway.yml", "pass.yml", "indexer-0.yml", "indexer-1.yml"})
    BOOST_TEST(fs::exists(out / f), f);
  r = validate(out);
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "valid: " + (out / "pass.yml").string() + " document 2 (Deployment/pass)"), r.output);

  const YAML::Node pass = document(out / "pass.yml", "Deployment");
  BOOST_TEST(pass["metadata"]["namespace"].as<std::string>() == "shop-search");
  BOOST_TEST(pass["spec"]["replicas"].as<int>() == 2);
  const YAML::Node c = pass["spec"]["template"]["spec"]["containers"][0];
  BOOST_TEST(c["image"].as<std::string>() == "registry.local/docflow:1");
  BOOST_TEST(c["resources"]["requests"]["cpu"].as<std::string>() == "500m");
  BOOST_TEST(c["resources"]["limits"]["memory"].as<std::string>() == "2Gi");
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"})
    BOOST_TEST(c[probe]["exec"]["command"][1].as<std::string>() == "ping", probe);
  BOOST_TEST(c["lifecycle"]["preStop"]["exec"]["command"][0].as<std::string>() == "sleep");
  // A run folder per pod: --name $(POD_NAME), from the pod's own name.
  const auto command = c["command"].as<std::vector<std::string>>();
  BOOST_TEST(command.back() == "$(POD_NAME)");
  BOOST_TEST(c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>() == "metadata.name");
  // The executor's resolved configuration, what its pod serves.
  const std::string pass_flow = document(out / "pass.yml", "ConfigMap")["data"]["flow.yml"].as<std::string>();
  BOOST_TEST(contains(pass_flow, "name: pass"), pass_flow);
  BOOST_TEST(!contains(pass_flow, "replicas"), pass_flow);  // the Deployment's, not the flow's
  BOOST_TEST(document(out / "indexer-1.yml", "Service")["spec"]["ports"][0]["port"].as<int>() == 8080);

  // The gateway runs the flow with every executor remote at its services.
  const YAML::Node gateway_flow = YAML::Load(document(out / "gateway.yml", "ConfigMap")["data"]["flow.yml"].as<std::string>());
  const YAML::Node executors = gateway_flow["executors"];
  BOOST_TEST(executors[0]["hosts"][0].as<std::string>() == "pass.shop-search.svc:8080");
  BOOST_TEST(executors[0]["replicas"].as<int>() == 2);  // a connection per replica, spread by the Service
  BOOST_TEST(!executors[0]["resources"]);
  BOOST_TEST(executors[1]["shards"].as<int>() == 2);
  BOOST_TEST(executors[1]["hosts"][0].as<std::string>() == "indexer-0.shop-search.svc:8080");
  BOOST_TEST(executors[1]["hosts"][1].as<std::string>() == "indexer-1.shop-search.svc:8080");
  BOOST_TEST(executors[1]["polling"]["/search"].as<std::string>() == "ALL");
  BOOST_TEST(gateway_flow["with"]["port_monitoring"].as<int>() == 9090);
  const YAML::Node gateway = document(out / "gateway.yml", "Service");
  BOOST_TEST(gateway["spec"]["ports"][1]["port"].as<int>() == 9090);
}

BOOST_AUTO_TEST_CASE(a_manifest_the_schema_refuses_fails_the_check) {
  TempDir dir;
  const fs::path out = dir.path() / "k8s";
  auto r = run_command(kFlow + " export kubernetes " + write(dir, "flow.yml", kServed) + " " + out.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::ifstream in(out / "pass.yml");
  std::stringstream text;
  text << in.rdbuf();
  std::string broken = text.str();
  broken.replace(broken.find("replicas: 2"), 11, "replicas: two");
  std::ofstream(out / "pass.yml") << broken;
  r = validate(out);
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(contains(r.output, "(Deployment/pass): data/spec/replicas must be integer"), r.output);
}

BOOST_AUTO_TEST_CASE(a_batch_flow_is_a_pytorchjob_and_an_indexed_job_of_its_ranks) {
  TempDir dir;
  const fs::path out = dir.path() / "job";
  auto r = run_command(kFlow + " export kubernetes " + write(dir, "flow.yml", kBatch) + " " + out.string() + " --nodes 3 --namespace ml");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "3 ranks: apply pytorchjob.yml"), r.output);
  r = validate(out);
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "(PyTorchJob/train)"), r.output);
  BOOST_TEST(contains(r.output, "(Job/train)"), r.output);

  const YAML::Node pytorch = document(out / "pytorchjob.yml", "PyTorchJob");
  BOOST_TEST(pytorch["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"].as<int>() == 1);
  BOOST_TEST(pytorch["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"].as<int>() == 2);
  const YAML::Node master = pytorch["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0];
  BOOST_TEST(master["name"].as<std::string>() == "pytorch");
  BOOST_TEST(master["command"][1].as<std::string>() == "run");
  BOOST_TEST(master["resources"]["limits"]["cpu"].as<std::string>() == "4");

  const YAML::Node job = document(out / "job.yml", "Job");
  BOOST_TEST(job["spec"]["completionMode"].as<std::string>() == "Indexed");
  BOOST_TEST(job["spec"]["completions"].as<int>() == 3);
  BOOST_TEST(job["spec"]["template"]["spec"]["subdomain"].as<std::string>() == "train");
  auto env = environment_of(job["spec"]["template"]["spec"]["containers"][0]);
  BOOST_TEST(env["RANK"] == "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  BOOST_TEST(env["WORLD_SIZE"] == "3");
  BOOST_TEST(env["MASTER_ADDR"] == "train-0.train.ml.svc");  // rank 0's pod through the headless Service
  BOOST_TEST(document(out / "job.yml", "Service")["spec"]["clusterIP"].as<std::string>() == "None");
  const std::string flow = document(out / "job.yml", "ConfigMap")["data"]["flow.yml"].as<std::string>();
  BOOST_TEST(contains(flow, "uses: DocumentReader"), flow);
}

BOOST_AUTO_TEST_CASE(several_ranks_per_pod_make_each_pod_the_launcher_told_by_torchruns_variables) {
  TempDir dir;
  const fs::path out = dir.path() / "job";
  auto r = run_command(kFlow + " export kubernetes " + write(dir, "flow.yml", kBatch) + " " + out.string() +
                       " --nodes 2 --nproc-per-node 4 --namespace ml");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "8 ranks (2 pods of 4): apply pytorchjob.yml"), r.output);
  r = validate(out);
  BOOST_TEST(r.exit_code == 0, r.output);

  // The operator (v1.7 on) sets PET_NPROC_PER_NODE and the rest from nprocPerNode.
  const YAML::Node pytorch = document(out / "pytorchjob.yml", "PyTorchJob");
  BOOST_TEST(pytorch["spec"]["nprocPerNode"].as<std::string>() == "4");
  BOOST_TEST(pytorch["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"].as<int>() == 1);
  const auto master_env = environment_of(pytorch["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]);
  BOOST_TEST(master_env.count("LOCAL_WORLD_SIZE") == 0u);  // the launcher sets it for its ranks

  // Without the operator the indexed Job says it itself.
  auto env = environment_of(document(out / "job.yml", "Job")["spec"]["template"]["spec"]["containers"][0]);
  BOOST_TEST(env["PET_NPROC_PER_NODE"] == "4");
  BOOST_TEST(env["PET_NNODES"] == "2");
  BOOST_TEST(env["PET_NODE_RANK"] == "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  BOOST_TEST(env["PET_MASTER_ADDR"] == "train-0.train.ml.svc");
  BOOST_TEST((env.count("RANK") == 0u && env.count("WORLD_SIZE") == 0u));

  r = run_command(kFlow + " export compose " + write(dir, "batch.yml", kBatch) + " " + dir.file("batch") + " --nodes 2 --nproc-per-node 3");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "6 ranks (2 pods of 3)"), r.output);
  const YAML::Node batch = YAML::LoadFile(dir.file("batch/docker-compose.yml"));
  BOOST_TEST(batch["services"]["rank-1"]["environment"]["PET_NODE_RANK"].as<std::string>() == "1");
  BOOST_TEST(batch["services"]["rank-1"]["environment"]["PET_NPROC_PER_NODE"].as<std::string>() == "3");
  BOOST_TEST(batch["services"]["rank-1"]["environment"]["PET_MASTER_ADDR"].as<std::string>() == "rank-0");

  r = run_command(kFlow + " export kubernetes " + write(dir, "flow.yml", kBatch) + " " + dir.file("bad") + " --nproc-per-node 0");
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(contains(r.output, "--nproc-per-node expects at least 1, found 0"), r.output);
}

BOOST_AUTO_TEST_CASE(compose_files_are_what_docker_compose_accepts) {
  BOOST_REQUIRE_MESSAGE(run_command("command -v docker-compose").exit_code == 0,
                        "docker-compose is not installed: scripts/setup.sh installs it");
  TempDir dir;
  auto r = run_command(kFlow + " export compose " + write(dir, "flow.yml", kServed) + " " + dir.file("served") + " --port 9000");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(fs::exists(dir.path() / "served/config/indexer-1.yml"));
  r = run_command("docker-compose -f " + dir.file("served/docker-compose.yml") + " config -q");
  BOOST_TEST(r.exit_code == 0, r.output);
  const YAML::Node served = YAML::LoadFile(dir.file("served/docker-compose.yml"));
  BOOST_TEST(served["services"]["pass"]["deploy"]["replicas"].as<int>() == 2);
  BOOST_TEST(served["services"]["pass"]["deploy"]["resources"]["reservations"]["cpus"].as<std::string>() == "0.5");
  BOOST_TEST(served["services"]["pass"]["deploy"]["resources"]["limits"]["memory"].as<std::string>() == "2g");
  BOOST_TEST(served["services"]["gateway"]["ports"][0].as<std::string>() == "9000:8080");
  BOOST_TEST(served["services"]["gateway"]["depends_on"]["indexer-0"]["condition"].as<std::string>() == "service_healthy");
  const YAML::Node gateway_flow = YAML::LoadFile(dir.file("served/config/gateway.yml"));
  BOOST_TEST(gateway_flow["executors"][1]["hosts"][1].as<std::string>() == "indexer-1:8080");

  r = run_command(kFlow + " export compose " + write(dir, "batch.yml", kBatch) + " " + dir.file("batch") + " --nodes 2");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  r = run_command("docker-compose -f " + dir.file("batch/docker-compose.yml") + " config -q");
  BOOST_TEST(r.exit_code == 0, r.output);
  const YAML::Node batch = YAML::LoadFile(dir.file("batch/docker-compose.yml"));
  BOOST_TEST(batch["services"]["rank-1"]["environment"]["RANK"].as<std::string>() == "1");
  BOOST_TEST(batch["services"]["rank-1"]["environment"]["MASTER_ADDR"].as<std::string>() == "rank-0");
}

BOOST_AUTO_TEST_CASE(exports_that_cannot_work_are_refused_saying_why) {
  TempDir dir;
  const std::string served = write(dir, "flow.yml", kServed);
  auto r = run_command(kFlow + " export kubernetes " + served + " " + dir.file("a"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  r = run_command(kFlow + " export kubernetes " + served + " " + dir.file("a"));  // again, into the same folder
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, dir.file("a") + " is not empty: give a new folder"), r.output);

  const std::string twins = write(dir, "twins.yml", "jtype: Flow\nexecutors:\n  - name: text_encoder\n  - name: Text-Encoder\n");
  r = run_command(kFlow + " export kubernetes " + twins + " " + dir.file("b"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "executor 'Text-Encoder' and executor 'text_encoder' both become the service 'text-encoder'"), r.output);
  BOOST_TEST(!fs::exists(dir.file("b")));

  r = run_command(kFlow + " export kubernetes " + served + " " + dir.file("c") + " --namespace Prod_1");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "--namespace Prod_1 is not a Kubernetes name"), r.output);

  const std::string bad = write(dir, "bad.yml", "jtype: Flow\nexecutors:\n  - name: pass\n    resources: {requests: {memory: lots}}\n");
  r = run_command(kFlow + " export compose " + bad + " " + dir.file("d"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "bad.yml:4:"), r.output);
  BOOST_TEST(contains(r.output, "`resources.requests.memory: lots` is not a Kubernetes quantity"), r.output);

  r = run_command(kFlow + " export helm " + served + " " + dir.file("e"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "exports to `kubernetes` or `compose`, found 'helm'"), r.output);
}

BOOST_AUTO_TEST_SUITE_END()
