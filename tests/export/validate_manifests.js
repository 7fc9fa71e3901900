// Checks every document of the given YAML files against the Kubernetes API
// schema (the OpenAPI schemas of kubernetes-models, the same that kubectl's
// client-side validation uses). Kubeflow's PyTorchJob has no published
// model: its fields are checked here against the training operator's API
// (kubeflow.org/v1), and each replica's pod template against the core
// schema. Prints one line per object; exits 1 naming the file, the object
// and the field at fault.
//
//   node validate_manifests.js OUT/*.yml
"use strict";
const fs = require("fs");
const yaml = require("js-yaml");

const groups = {
  v1: require("kubernetes-models/v1"),
  "apps/v1": require("kubernetes-models/apps/v1"),
  "batch/v1": require("kubernetes-models/batch/v1"),
};
const { PodTemplateSpec } = require("kubernetes-models/v1");

function fail(where, message) {
  throw new Error(`${where}: ${message}`);
}

function checkPyTorchJob(doc, where) {
  const allowed = new Set(["apiVersion", "kind", "metadata", "spec"]);
  for (const k of Object.keys(doc)) if (!allowed.has(k)) fail(where, `unknown field '${k}'`);
  if (!doc.metadata || !doc.metadata.name) fail(where, "metadata.name is required");
  const spec = doc.spec || fail(where, "spec is required");
  for (const k of Object.keys(spec))
    if (!["runPolicy", "pytorchReplicaSpecs", "elasticPolicy", "nprocPerNode"].includes(k)) fail(where, `unknown field 'spec.${k}'`);
  if ("nprocPerNode" in spec && (typeof spec.nprocPerNode !== "string" || !/^([1-9][0-9]*|auto|cpu|gpu)$/.test(spec.nprocPerNode)))
    fail(where, `spec.nprocPerNode is a string: a number, auto, cpu or gpu; found ${JSON.stringify(spec.nprocPerNode)}`);
  const replicas = spec.pytorchReplicaSpecs || fail(where, "spec.pytorchReplicaSpecs is required");
  if (!replicas.Master) fail(where, "spec.pytorchReplicaSpecs.Master is required (rank 0)");
  for (const [role, r] of Object.entries(replicas)) {
    const at = `${where} spec.pytorchReplicaSpecs.${role}`;
    if (role !== "Master" && role !== "Worker") fail(at, "replica types are Master and Worker");
    for (const k of Object.keys(r)) if (!["replicas", "restartPolicy", "template"].includes(k)) fail(at, `unknown field '${k}'`);
    if (!Number.isInteger(r.replicas) || r.replicas < 1) fail(at, `replicas must be a positive integer, found ${JSON.stringify(r.replicas)}`);
    if (role === "Master" && r.replicas !== 1) fail(at, "Master has exactly one replica");
    if (!["Always", "OnFailure", "Never", "ExitCode"].includes(r.restartPolicy)) fail(at, `bad restartPolicy ${r.restartPolicy}`);
    const containers = (r.template && r.template.spec && r.template.spec.containers) || fail(at, "template.spec.containers is required");
    if (!containers.some((c) => c.name === "pytorch")) fail(at, "the training operator needs a container named 'pytorch'");
    try {
      new PodTemplateSpec(r.template).validate();
    } catch (e) {
      fail(`${at}.template`, e.message);
    }
  }
  const policy = spec.runPolicy || {};
  for (const k of Object.keys(policy))
    if (!["cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit", "schedulingPolicy", "suspend"].includes(k))
      fail(where, `unknown field 'spec.runPolicy.${k}'`);
  if (policy.cleanPodPolicy && !["All", "Running", "None"].includes(policy.cleanPodPolicy)) fail(where, `bad cleanPodPolicy`);
}

let failed = false;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d !== null);
  } catch (e) {
    console.error(`${file}: not YAML: ${e.message}`);
    failed = true;
    continue;
  }
  docs.forEach((doc, i) => {
    const where = `${file} document ${i + 1} (${doc && doc.kind}/${doc && doc.metadata && doc.metadata.name})`;
    try {
      if (doc.apiVersion === "kubeflow.org/v1" && doc.kind === "PyTorchJob") {
        checkPyTorchJob(doc, where);
      } else {
        const group = groups[doc.apiVersion] || fail(where, `no schema for apiVersion ${doc.apiVersion}`);
        const Model = group[doc.kind] || fail(where, `no schema for kind ${doc.kind} in ${doc.apiVersion}`);
        new Model(doc).validate();
      }
      console.log(`valid: ${where}`);
    } catch (e) {
      console.error(`invalid: ${e.message.startsWith(file) ? e.message : where + ": " + e.message}`);
      failed = true;
    }
  });
}
process.exit(failed ? 1 : 0);
