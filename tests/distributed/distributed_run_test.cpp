// Distributed fine-tuning through the real `flow` binary: ranks are real
// processes on 127.0.0.1 talking c10d/Gloo, started by `--nproc-per-node`,
// by torchrun's environment, and by one launcher per "node". Each rank has
// one thread. A short main job (small preset, 512 examples, batch 64, 3
// epochs: 24 steps) is the yardstick: every way of running it must give one
// process's losses, metrics and artifact.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <optional>
#include <set>
#include <thread>

#include "../support/file_bytes.hpp"
#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "clip/safetensors.hpp"
#include "cli/rank_launcher.hpp"
#include "docarray/document_file.hpp"

#include <ATen/ops/allclose.h>

using docflow::testing::run_command;
using docflow::testing::TempDir;
namespace fs = std::filesystem;

using docflow::testing::file_bytes;

namespace {

struct DataPresent {
  std::string root = DOCFLOW_SHARED_DIR;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result ok(
        fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") &&
        fs::exists(std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz"));
    ok.message() << "skipped: needs dataset-fashion-mnist and ../shared/data/clip";
    return ok;
  }
};

std::string flow_exe() { return DOCFLOW_FLOW_EXE; }

// `flow run` of the short job in `dir`, with `extra` options, on the main
// job's flow or another.
std::string job(const TempDir& dir, const std::string& extra,
                const std::string& flow = std::string(PROJECT_SOURCE_DIR) + "/flows/clip-fashion.yml") {
  const std::string vocab = std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  return "cd " + dir.path().string() + " && OMP_NUM_THREADS=1 " + flow_exe() + " run " + flow +
         " --set with.workspace=runs --set reader.limit=512 --set reader.batch_size=64 "
         "--set reader.epochs=3 --set evaluator.limit=100 --set trainer.num_warmup_steps=4 --set tokenize.vocab=" + vocab +
         " --set evaluator.vocab=" + vocab + " --set checkpointer.vocab=" + vocab + " " + extra;
}

std::vector<double> losses(const fs::path& run) {
  std::ifstream in(run / "steps.jsonl");
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

std::vector<nlohmann::json> evaluations(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["stage"] != "train") out.push_back(j);
  }
  return out;
}

nlohmann::json run_status(const fs::path& run) {
  std::ifstream in(run / "status.json");
  return nlohmann::json::parse(in);
}

bool close(double a, double b, double rel) { return std::abs(a - b) <= rel * std::max(1.0, std::abs(b)); }

void same_losses(const std::vector<double>& got, const std::vector<double>& want) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]) / std::abs(want[i]));
    BOOST_TEST(close(got[i], want[i], 1e-4), "step " << i + 1 << ": loss " << got[i] << ", one process " << want[i]);
  }
  BOOST_TEST_MESSAGE(got.size() << " steps, largest relative loss difference " << worst);
}

// One process, once for the whole suite: what every distributed run must match.
struct Reference {
  TempDir dir;
  fs::path run;
  std::vector<double> losses;
  Reference() {
    const auto r = run_command(job(dir, "--name one"));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    run = dir.path() / "runs" / "one";
    losses = ::losses(run);
    BOOST_REQUIRE_EQUAL(losses.size(), 24u);  // 512 / 64 x 3 epochs
  }
};

Reference& reference() {
  static Reference ref;
  return ref;
}

// A command in the background of the test, waited for with a bound.
class Background {
 public:
  explicit Background(const std::string& command) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The exit status, or nullopt if it ran past `limit`.
  std::optional<int> wait(std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

// Two `flow run` processes given torchrun's environment by hand (what
// torchrun, a PyTorchJob or Slurm does): rank 1 in the background, logging
// to rank1.log, waits for rank 0's store. Prints "exits A B" (rank 0, rank 1).
docflow::testing::CommandResult two_ranks_by_environment(const TempDir& dir, const std::string& rank0, const std::string& rank1) {
  const std::string env = "WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 DOCFLOW_DIST_TIMEOUT=20 MASTER_PORT=" +
                          std::to_string(docflow::cli::free_loopback_port());
  return run_command("(" + env + " RANK=1 LOCAL_RANK=1 sh -c '" + job(dir, rank1) + "' > " + dir.file("rank1.log") + " 2>&1 & " +
                     env + " RANK=0 LOCAL_RANK=0 sh -c '" + job(dir, rank0) + "'; a=$?; wait $!; b=$?; echo \"exits $a $b\")");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distributed_runs, *boost::unit_test::precondition(DataPresent()))

BOOST_AUTO_TEST_CASE(two_ranks_train_exactly_as_one_process) {
  Reference& ref = reference();
  TempDir dir;
  const auto r = run_command(job(dir, "--name two --nproc-per-node 2"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const fs::path run = dir.path() / "runs" / "two";
  BOOST_TEST(run_status(run)["state"] == "FINISHED");
  same_losses(losses(run), ref.losses);
  // The evaluations (before training and after each epoch) agree too.
  const auto got = evaluations(run), want = evaluations(ref.run);
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    for (const auto& [metric, value] : want[i].items())
      if (value.is_number_float())
        BOOST_TEST(close(got[i][metric].get<double>(), value.get<double>(), 1e-4), "evaluation " << i << " " << metric);
  // And the model rank 0 kept as the artifact.
  const auto a = clip::read_safetensors((run / "artifact" / "model.safetensors").string()).tensors;
  const auto b = clip::read_safetensors((ref.run / "artifact" / "model.safetensors").string()).tensors;
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (const auto& [name, t] : b) BOOST_TEST(at::allclose(a.at(name), t, 1e-3, 1e-5), name);
  // Rank 1 kept its own log; the run's files are rank 0's.
  BOOST_TEST(file_bytes(run / "ranks" / "1" / "run.log").find("rank 1 of 2") != std::string::npos);
  BOOST_TEST(!fs::exists(run / "ranks" / "1" / "artifact"));
  BOOST_TEST(r.output.find("ranks 0-1 of 2 started") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(open_clips_local_loss_trains_the_same_steps) {
  // Each rank's rows against every rank's features: the mean of the local
  // losses is the full CLIPLoss, and with the gradient through the gather
  // the averaged gradients are the full loss's, so the steps are one
  // process's again.
  Reference& ref = reference();
  TempDir dir;
  const auto r = run_command(job(dir, "--name local --nproc-per-node 2 --set trainer.local_loss=true"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(file_bytes(dir.path() / "runs" / "local" / "run.log").find("local loss") != std::string::npos);
  same_losses(losses(dir.path() / "runs" / "local"), ref.losses);
}

BOOST_AUTO_TEST_CASE(gradients_averaged_from_backward_train_the_same_steps) {
  // The buckets start from the accumulators' hooks while the gather's own
  // collective runs inside the same backward: on their own channel the two
  // cannot pair up wrongly, and the steps are one process's.
  Reference& ref = reference();
  TempDir dir;
  const auto r = run_command(job(dir, "--name overlap --nproc-per-node 2 --set trainer.overlap_allreduce=true"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string log = file_bytes(dir.path() / "runs" / "overlap" / "run.log");
  // "K of N buckets started inside backward": the hooks started some of them.
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_search(log, m, std::regex("([0-9]+) of ([0-9]+) buckets started inside backward")), log);
  BOOST_TEST(std::stoi(m[1]) > 0);
  BOOST_TEST(std::stoi(m[1]) <= std::stoi(m[2]));
  same_losses(losses(dir.path() / "runs" / "overlap"), ref.losses);
}

BOOST_AUTO_TEST_CASE(processes_started_with_torchruns_environment_are_its_ranks) {
  Reference& ref = reference();
  TempDir dir;
  const auto r = two_ranks_by_environment(dir, "--name tr", "--name tr");
  BOOST_REQUIRE_MESSAGE(r.output.find("exits 0 0") != std::string::npos, r.output + file_bytes(dir.file("rank1.log")));
  same_losses(losses(dir.path() / "runs" / "tr"), ref.losses);
}

// A pod of Kubeflow's training operator with nprocPerNode: torchrun's
// launcher variables, and beside them the WORLD_SIZE and RANK the operator
// sets for the pod (not for the ranks): `flow run FILE` is the launcher.
BOOST_AUTO_TEST_CASE(a_pod_with_torchruns_launcher_variables_launches_its_ranks) {
  Reference& ref = reference();
  TempDir dir;
  const std::string port = std::to_string(docflow::cli::free_loopback_port());
  const auto r = run_command("PET_NPROC_PER_NODE=2 PET_NNODES=1:1 PET_NODE_RANK=0 PET_MASTER_ADDR=127.0.0.1 PET_MASTER_PORT=" + port +
                             " WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " sh -c '" + job(dir, "--name pet") + "'");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("ranks 0-1 of 2 started") != std::string::npos, r.output);
  same_losses(losses(dir.path() / "runs" / "pet"), ref.losses);

  const auto elastic = run_command("PET_NPROC_PER_NODE=2 PET_NNODES=1:4 sh -c '" + job(dir, "--name elastic") + "'");
  BOOST_TEST(elastic.exit_code != 0);
  BOOST_TEST(elastic.output.find("PET_NNODES='1:4' asks for an elastic run") != std::string::npos, elastic.output);
}

BOOST_AUTO_TEST_CASE(one_launcher_per_node_joins_a_run_across_machines) {
  Reference& ref = reference();
  TempDir dir;
  const std::string nodes = "--nnodes 2 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port " +
                            std::to_string(docflow::cli::free_loopback_port());
  Background node1(job(dir, nodes + " --node-rank 1") + " > " + dir.file("node1.log") + " 2>&1");
  const auto r = run_command(job(dir, nodes + " --node-rank 0 --name nodes"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::optional<int> node1_exit = node1.wait(std::chrono::seconds(60));
  BOOST_TEST((node1_exit && *node1_exit == 0), file_bytes(dir.file("node1.log")));
  same_losses(losses(dir.path() / "runs" / "nodes"), ref.losses);
}

// Starts the short job on two ranks as run NAME, kills rank 1 with SIGKILL a
// little into epoch 2 (after the checkpoint of epoch 1), and checks that
// the run fails within the timeout, naming what happened to rank 1.
void kill_rank_1_mid_run(const TempDir& dir, const std::string& name) {
  const fs::path run = dir.path() / "runs" / name;
  Background launcher(job(dir, "--name " + name + " --nproc-per-node 2 --dist-timeout 10") + " > " + dir.file("launcher.log") +
                      " 2>&1");
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!fs::exists(run / "checkpoints" / "LATEST") && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  BOOST_REQUIRE_MESSAGE(fs::exists(run / "checkpoints" / "LATEST"), file_bytes(dir.file("launcher.log")));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const std::string log = file_bytes(dir.file("launcher.log"));
  const auto at = log.find("(pids ");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, log);
  const long rank1 = std::stol(log.substr(log.find(", ", at) + 2));
  const auto killed_at = std::chrono::steady_clock::now();
  BOOST_REQUIRE(::kill(static_cast<pid_t>(rank1), SIGKILL) == 0);
  const std::optional<int> code = launcher.wait(std::chrono::seconds(40));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  BOOST_REQUIRE_MESSAGE(code.has_value(), "the launcher still runs 40 s after rank 1 was killed");
  BOOST_TEST(*code != 0);
  BOOST_TEST_MESSAGE("the run ended " << secs << " s after rank 1 was killed");
  BOOST_TEST(secs < 20.0);  // the 10 s timeout and the launcher's margin at most
  const auto st = run_status(run);
  BOOST_TEST(st["state"] == "FAILED");
  const std::string details = st["details"];
  BOOST_TEST_MESSAGE(details);
  BOOST_TEST(details.find("rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_rank_killed_mid_epoch_fails_the_run_in_bounded_time_and_resume_finishes_it) {
  Reference& ref = reference();
  TempDir dir;
  kill_rank_1_mid_run(dir, "killed");
  // Resumed on two ranks: the losses of the uninterrupted run.
  const auto r = run_command(job(dir, "--resume killed --nproc-per-node 2"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const fs::path run = dir.path() / "runs" / "killed";
  BOOST_TEST(run_status(run)["state"] == "FINISHED");
  same_losses(losses(run), ref.losses);
}

BOOST_AUTO_TEST_CASE(a_two_rank_run_resumes_on_one_process) {
  // The data order depends on the seed and the epoch, not on the number of
  // ranks: a checkpoint of two ranks continues in one process.
  Reference& ref = reference();
  TempDir dir;
  kill_rank_1_mid_run(dir, "shrunk");
  const auto r = run_command(job(dir, "--resume shrunk"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  same_losses(losses(dir.path() / "runs" / "shrunk"), ref.losses);
}

BOOST_AUTO_TEST_CASE(ranks_that_resolved_different_flows_are_refused) {
  TempDir dir;
  const auto r = two_ranks_by_environment(dir, "--name mixed", "--set trainer.learning_rate=0.002");
  BOOST_TEST_MESSAGE(r.output);
  BOOST_TEST(r.output.find("exits 0") == std::string::npos);
  BOOST_TEST(r.output.find("exits 2 2") != std::string::npos);  // refused at set-up, as a bad flow file is
  BOOST_TEST(r.output.find("rank 1's resolved flow differs from rank 0's") != std::string::npos);
  BOOST_TEST(file_bytes(dir.file("rank1.log")).find("differs") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_nan_on_one_rank_stops_every_rank_before_a_checkpoint) {
  // The main job with NanOnRank before the trainer: rank 1's 11th batch (step
  // 11, in the second epoch of 8 steps) gets a NaN image embedding. Every
  // rank must stop at that step: the epoch-1 checkpoint stays the newest.
  for (const char* loss : {"", " --set trainer.local_loss=true"}) {
    const std::string which = loss[0] ? "local loss" : "gathered loss";
    BOOST_TEST_CONTEXT(which) {
      TempDir dir;
      std::string flow = file_bytes(std::string(PROJECT_SOURCE_DIR) + "/flows/clip-fashion.yml");
      const auto at = flow.find("  - name: trainer\n");
      BOOST_REQUIRE(at != std::string::npos);
      flow.insert(at, "  - name: poison\n    uses: NanOnRank\n    with: {rank: 1, at_request: 11}\n");
      flow.replace(flow.find("  prefetch: 1\n"), 14, "  prefetch: 1\n  plugins: [" TEST_PLUGIN_DIR "]\n");
      std::ofstream(dir.file("poisoned.yml")) << flow;
      // The vocabulary paths of the flow are relative to the repository.
      Background run(job(dir, "--name nan --nproc-per-node 2 --dist-timeout 20" + std::string(loss), dir.file("poisoned.yml")) +
                     " > " + dir.file("out.log") + " 2>&1");
      const std::optional<int> status = run.wait(std::chrono::seconds(240));
      const std::string out = file_bytes(dir.file("out.log"));
      BOOST_TEST_MESSAGE(out);
      BOOST_REQUIRE_MESSAGE(status.has_value(), "the run did not stop within 240 s");
      BOOST_TEST(*status != 0);
      const fs::path run_dir = dir.path() / "runs" / "nan";
      const auto st = run_status(run_dir);
      BOOST_TEST(st["state"] == "FAILED");
      BOOST_TEST(st["details"].get<std::string>().find("the loss is NaN at step 11") != std::string::npos,
                 st["details"].get<std::string>());
      BOOST_TEST(losses(run_dir).size() == 10u);  // steps 1-10 logged, 11 refused
      std::vector<std::string> checkpoints;
      for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
        if (e.path().filename().string().rfind("epoch-", 0) == 0) checkpoints.push_back(e.path().filename());
      BOOST_TEST(checkpoints == std::vector<std::string>{"epoch-0000"});
      // Rank 1 saw the same refusal: it did not carry on alone.
      BOOST_TEST(file_bytes(run_dir / "ranks" / "1" / "run.log").find("the loss is NaN at step 11") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(readers_give_each_rank_a_disjoint_share_of_the_epoch) {
  TempDir dir;
  std::ofstream(dir.file("read.yml")) << "jtype: Flow\nwith: {name: read, workspace: runs}\nexecutors:\n"
                                         "  - {name: reader, uses: FashionMnistReader, with: {limit: 100, batch_size: 8, "
                                         "endpoint: /train, seed: 3}}\n"
                                         "  - {name: writer, uses: DocumentWriter, with: {path: out.docs}}\n";
  const std::string flow = "cd " + dir.path().string() + " && OMP_NUM_THREADS=1 " + flow_exe() + " run read.yml";
  auto r = run_command(flow + " --set writer.path=one.docs");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  r = run_command(flow + " --set writer.path=two.docs --nproc-per-node 2");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const auto one = docarray::load_documents(dir.file("one.docs"));
  const auto rank0 = docarray::load_documents(dir.file("two.docs")), rank1 = docarray::load_documents(dir.file("two.docs.rank-1"));
  BOOST_TEST(one.size() == 96u);  // 100 examples, batches of 8: the last 4 dropped
  BOOST_TEST(rank0.size() == 48u);
  BOOST_TEST(rank1.size() == 48u);
  std::map<std::string, std::string> captions;
  for (const auto& d : one) captions[d.id] = d.chunks.at(1).text;
  std::set<std::string> union_ids;
  for (const auto* share : {&rank0, &rank1})
    for (const auto& d : *share) {
      BOOST_TEST(union_ids.insert(d.id).second, d.id << " read by both ranks");
      BOOST_TEST(captions.count(d.id) == 1u, d.id << " is not in the single-process epoch");
      if (captions.count(d.id)) BOOST_TEST(captions[d.id] == d.chunks.at(1).text);  // the same caption on any rank
    }
  BOOST_TEST(union_ids.size() == captions.size());
}

BOOST_AUTO_TEST_SUITE_END()
