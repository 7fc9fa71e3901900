// A small fine-tuning job through `flow run`: the metrics must improve, the
// report and the artifact must be there, and the artifact must load.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "clip/image.hpp"
#include "clip/weights.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;

namespace {
struct DataPresent {
  std::string root = DOCFLOW_SHARED_DIR;  // not trivially copyable: see tests/clip/fixtures.hpp
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result ok(
        std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") &&
        std::filesystem::exists(std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz"));
    ok.message() << "skipped: needs dataset-fashion-mnist and ../shared/data/clip";
    return ok;
  }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(fashion_job, *boost::unit_test::precondition(DataPresent()))

BOOST_AUTO_TEST_CASE(a_short_job_improves_retrieval_and_leaves_an_artifact) {
  TempDir dir;
  const std::string vocab = std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  auto r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " run " + PROJECT_SOURCE_DIR +
                       "/flows/clip-fashion.yml --name job --set with.workspace=runs --set reader.limit=4000 "
                       "--set reader.epochs=2 --set evaluator.limit=500 --set tokenize.vocab=" + vocab +
                       " --set evaluator.vocab=" + vocab + " --set checkpointer.vocab=" + vocab);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::filesystem::path run = dir.path() / "runs" / "job";
  std::ifstream metrics(run / "metrics.jsonl");
  std::vector<nlohmann::json> evals;
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["stage"] != "train") evals.push_back(j);
  }
  BOOST_REQUIRE(evals.size() == 3u);  // before, and after each of two epochs
  const double before = evals.front()["average_precision"], after = evals.back()["average_precision"];
  BOOST_TEST_MESSAGE("average_precision " << before << " -> " << after);
  BOOST_TEST(after > before + 0.05);
  BOOST_TEST(std::filesystem::exists(run / "report.md"));
  {
    // gather_examples: 10 queries, their top 5 images before and after, as PNG thumbnails.
    std::ifstream md(run / "report.md");
    const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
    BOOST_TEST(text.find("## Example queries") != std::string::npos);
    std::size_t images = 0;
    for (std::size_t at = text.find("](examples/"); at != std::string::npos; at = text.find("](examples/", at + 1)) ++images;
    BOOST_TEST(images == 100u);  // 10 queries x 5 images x (before, after)
    std::filesystem::directory_iterator thumbnails(run / "examples");
    BOOST_REQUIRE(thumbnails != std::filesystem::directory_iterator());
    BOOST_TEST(clip::load_image(thumbnails->path().string()).width == 32);  // a real PNG of the test image
  }
  BOOST_TEST(std::filesystem::exists(run / "steps.jsonl"));
  BOOST_TEST(std::filesystem::exists(run / "artifact" / "vocab.json"));
  clip::ClipModel model = clip::load_model((run / "artifact").string());
  BOOST_TEST(model->config.vision.hidden_size == 128);

  // `flow artifact` copies it out, as Finetuner's save_artifact.
  r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " artifact job -o exported --workspace runs");
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(std::filesystem::exists(dir.path() / "exported" / "model.safetensors"));
  r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " artifact job -o exported --workspace runs");
  BOOST_TEST(r.exit_code == 2);
}

BOOST_AUTO_TEST_CASE(the_same_seed_and_data_give_the_same_losses) {
  TempDir dir;
  const std::string vocab = std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  auto losses = [&](const std::string& name) {
    auto r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " run " + PROJECT_SOURCE_DIR +
                         "/flows/clip-fashion.yml --name " + name + " --set with.workspace=runs --set reader.limit=640 " +
                         "--set reader.epochs=1 --set evaluator.limit=100 --set tokenize.vocab=" + vocab +
                         " --set evaluator.vocab=" + vocab + " --set checkpointer.vocab=" + vocab);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    std::vector<double> out;
    std::ifstream steps(dir.path() / "runs" / name / "steps.jsonl");
    for (std::string line; std::getline(steps, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
    return out;
  };
  std::vector<double> a = losses("first"), b = losses("second");
  BOOST_TEST(a.size() == 5u);
  BOOST_TEST(a == b, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_run_killed_at_a_random_step_and_resumed_ends_as_an_uninterrupted_one) {
  TempDir dir;
  const std::string vocab = std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  const std::string flow = std::string(PROJECT_SOURCE_DIR) + "/flows/clip-fashion.yml";
  const std::string settings = " --set with.workspace=runs --set reader.limit=640 --set reader.epochs=3 "
                               "--set evaluator.limit=100 --set tokenize.vocab=" + vocab +
                               " --set evaluator.vocab=" + vocab + " --set checkpointer.vocab=" + vocab;
  const std::string cd = "cd " + dir.path().string() + " && ";
  auto lines = [&](const std::string& run, const std::string& file) {
    std::vector<std::string> out;
    std::ifstream in(dir.path() / "runs" / run / file);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  auto r = run_command(cd + DOCFLOW_FLOW_EXE + " run " + flow + " --name whole" + settings);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);

  // 5 steps per epoch; the first checkpoint follows step 5. Kill -9 after a
  // random step of epochs 2 and 3, plus up to 100 ms, so that some kills land
  // in a step, in an evaluation or in a checkpoint's writing.
  std::mt19937 rng(std::random_device{}());
  const int kill_after = std::uniform_int_distribution<int>(7, 14)(rng);
  const int extra_ms = std::uniform_int_distribution<int>(0, 100)(rng);
  BOOST_TEST_MESSAGE("kill -9 after step " << kill_after << " + " << extra_ms << " ms");
  // `cd DIR;` on its own: `cd DIR && A & B` would put the cd in A's background subshell.
  r = run_command("cd " + dir.path().string() + "; " + DOCFLOW_FLOW_EXE + " run " + flow + " --name killed" + settings +
                  " >/dev/null 2>&1 & pid=$!; while [ \"$(cat runs/killed/steps.jsonl 2>/dev/null | wc -l)\" -lt " +
                  std::to_string(kill_after) + " ]; do sleep 0.02; done; sleep " + std::to_string(extra_ms / 1000.0) +
                  "; kill -9 $pid; wait $pid; " + DOCFLOW_FLOW_EXE + " status killed -w runs");
  BOOST_TEST_MESSAGE(r.output);
  if (r.output.find("state:    FINISHED") != std::string::npos) return;  // the kill came after the end: nothing to resume
  BOOST_REQUIRE_MESSAGE(r.output.find("state:    DIED") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("--resume killed") != std::string::npos, r.output);

  r = run_command(cd + DOCFLOW_FLOW_EXE + " run " + flow + " --resume killed" + settings);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  // Every step (loss, learning rate, logit scale) and every evaluation, exactly.
  const auto whole_steps = lines("whole", "steps.jsonl"), resumed_steps = lines("killed", "steps.jsonl");
  BOOST_TEST(whole_steps.size() == 15u);
  BOOST_TEST(whole_steps == resumed_steps, boost::test_tools::per_element());
  const auto whole_metrics = lines("whole", "metrics.jsonl"), resumed_metrics = lines("killed", "metrics.jsonl");
  BOOST_TEST(whole_metrics == resumed_metrics, boost::test_tools::per_element());
  BOOST_TEST(std::filesystem::exists(dir.path() / "runs" / "killed" / "artifact" / "model.safetensors"));
}

BOOST_AUTO_TEST_CASE(early_stopping_ends_the_run_cleanly_after_an_epoch) {
  TempDir dir;
  const std::string vocab = std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  {
    std::ifstream in(std::string(PROJECT_SOURCE_DIR) + "/flows/clip-fashion.yml");
    std::ofstream out(dir.file("flow.yml"));
    out << in.rdbuf();
    // An impossible baseline: no epoch improves on it, so patience 1 stops after the first.
    out << "  - name: early\n    uses: EarlyStopping\n    with: {monitor: precision_at_k, patience: 1, baseline: 2.0}\n";
  }
  auto r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " run flow.yml --name early " +
                       "--set with.workspace=runs --set reader.limit=512 --set reader.epochs=5 --set evaluator.limit=100 " +
                       "--set tokenize.vocab=" + vocab + " --set evaluator.vocab=" + vocab + " --set checkpointer.vocab=" + vocab);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("stopping after epoch 1") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("finished: 4 requests, 512 documents, 1 epoch(s)") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
