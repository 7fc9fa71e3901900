// flows/clip-finetune.yml as a user runs it: local weights (the clip-tiny
// fixture, in Hugging Face format), a CSV of generated image-caption pairs,
// held-out pairs for evaluation, the best model by val_loss.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "clip/weights.hpp"
#include "generated_pairs.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;
namespace fs = std::filesystem;

namespace {
struct SharedPresent {
  std::string root = DOCFLOW_SHARED_DIR;  // not trivially copyable: see tests/clip/fixtures.hpp
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result ok(fs::exists(root + "/fixtures/clip-tiny/model.safetensors") &&
                                           fs::exists(root + "/data/clip/bpe_simple_vocab_16e6.txt.gz"));
    ok.message() << "skipped: needs ../shared/fixtures/clip-tiny and ../shared/data/clip";
    return ok;
  }
};

// The command that runs clip-finetune.yml on DIR's train.csv and eval.csv.
std::string finetune_command(const TempDir& dir, const std::string& extra,
                             const std::string& flow = PROJECT_SOURCE_DIR "/flows/clip-finetune.yml") {
  const std::string shared = DOCFLOW_SHARED_DIR, vocab = shared + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  return "cd " + dir.path().string() + " && CLIP_WEIGHTS=" + shared + "/fixtures/clip-tiny TRAIN_DATA=train.csv " +
         "EVAL_DATA=eval.csv " + DOCFLOW_FLOW_EXE + " run " + flow + " " +
         "--set with.workspace=runs --set tokenize.vocab=" + vocab + " --set evaluator.vocab=" + vocab +
         " --set checkpointer.vocab=" + vocab + " --set reader.image_size=32 --set evaluator.image_size=32 " +
         "--set reader.batch_size=16 --set trainer.learning_rate=0.002 " + extra;
}

std::vector<nlohmann::json> evaluations(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["stage"] != "train") out.push_back(j);
  }
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(finetune_flow, *boost::unit_test::precondition(SharedPresent()))

BOOST_AUTO_TEST_CASE(fine_tuning_local_weights_on_a_csv_improves_held_out_retrieval) {
  TempDir dir;
  docflow::testing::write_pairs(dir.path(), "train", 192, 1);
  docflow::testing::write_pairs(dir.path(), "eval", 48, 2);
  auto r = run_command(finetune_command(dir, "--name tiny --set reader.epochs=4"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const fs::path run = dir.path() / "runs" / "tiny";
  auto evals = evaluations(run);
  BOOST_REQUIRE(evals.size() == 5u);  // before, and after each of four epochs
  const double before = evals.front()["val_loss"], after = evals.back()["val_loss"];
  BOOST_TEST_MESSAGE("val_loss " << before << " -> " << after << "; ndcg_at_k " << evals.front()["ndcg_at_k"] << " -> "
                                 << evals.back()["ndcg_at_k"]);
  BOOST_TEST(after < before - 0.1);
  BOOST_TEST(evals.back()["ndcg_at_k"].get<double>() > evals.front()["ndcg_at_k"].get<double>());
  BOOST_TEST(r.output.find("48 held-out captions against 48 images") != std::string::npos, r.output);
  // The artifact is the fine-tuned tiny model, loadable, with its tokenizer.
  clip::ClipModel model = clip::load_model((run / "artifact").string());
  BOOST_TEST(model->config.vision.hidden_size == 64);
  BOOST_TEST(fs::exists(run / "artifact" / "merges.txt"));
}

BOOST_AUTO_TEST_CASE(a_broken_image_is_skipped_with_a_count_or_fails_naming_its_line) {
  TempDir dir;
  docflow::testing::write_pairs(dir.path(), "train", 40, 3);
  docflow::testing::write_pairs(dir.path(), "eval", 8, 4);
  std::ofstream(dir.path() / "images" / "train-5.png", std::ios::binary) << "not a png";
  auto r = run_command(finetune_command(dir, "--name skip --set reader.epochs=1"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("1 example(s) skipped for unreadable images") != std::string::npos, r.output);

  r = run_command(finetune_command(dir, "--name fail --set reader.epochs=1 --set reader.on_error=fail"));
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("train.csv:7: ") != std::string::npos, r.output);  // header is line 1, train-5 line 7
  BOOST_TEST(r.output.find("train-5.png") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(a_missing_column_names_the_file_and_the_columns_there_are) {
  TempDir dir;
  docflow::testing::write_pairs(dir.path(), "train", 8, 5);
  docflow::testing::write_pairs(dir.path(), "eval", 8, 6);
  auto r = run_command(finetune_command(dir, "--name col --set reader.caption_column=text"));
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("train.csv:1: no column 'text' (caption_column); the header has 'image', 'caption', 'label'") !=
                 std::string::npos,
             r.output);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(wise_ft, *boost::unit_test::precondition(SharedPresent()))

BOOST_AUTO_TEST_CASE(alpha_0_gives_back_the_starting_weights_and_their_metrics) {
  TempDir dir;
  docflow::testing::write_pairs(dir.path(), "train", 64, 11);
  docflow::testing::write_pairs(dir.path(), "eval", 16, 12);
  {
    std::ifstream in(std::string(PROJECT_SOURCE_DIR) + "/flows/clip-finetune.yml");
    std::ofstream out(dir.file("flow.yml"));
    for (std::string line; std::getline(in, line);) {
      // WiSEFT goes before the evaluator, so that the evaluator sees the blend.
      if (line == "  - name: evaluator") out << "  - name: wise\n    uses: WiSEFT\n    with: {alpha: 0.0}\n";
      out << line << "\n";
    }
  }
  auto r = run_command(finetune_command(dir, "--name blend --set reader.epochs=2", "flow.yml"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const fs::path run = dir.path() / "runs" / "blend";
  auto evals = evaluations(run);
  BOOST_REQUIRE(evals.size() == 4u);  // before, two epochs, the blend
  BOOST_TEST(evals.back()["stage"] == "wise-ft");
  BOOST_TEST(evals[1]["val_loss"] != evals.front()["val_loss"]);  // training did change the model
  for (const char* metric : {"val_loss", "ndcg_at_k", "average_precision"})
    BOOST_TEST(evals.back()[metric].get<double>() == evals.front()[metric].get<double>(), metric);
  // The artifact is the blend: at alpha 0, exactly the starting weights.
  clip::ClipModel start = clip::load_model(std::string(DOCFLOW_SHARED_DIR) + "/fixtures/clip-tiny");
  clip::ClipModel artifact = clip::load_model((run / "artifact").string());
  auto expected = start->named_parameters();
  for (const auto& p : artifact->named_parameters()) BOOST_TEST(p.value().equal(expected[p.key()]), p.key());
  BOOST_TEST(r.output.find("the WiSE-FT blend (alpha 0.000000): saved") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(trainer_options, *boost::unit_test::precondition(SharedPresent()))

namespace {
// The fixture's weights and the artifact's after one epoch with `settings`.
struct Trained {
  std::map<std::string, torch::Tensor> start, end;
  std::vector<nlohmann::json> steps;
  bool changed(const std::string& name) const { return !start.at(name).equal(end.at(name)); }
};

Trained train_with(const std::string& settings) {
  TempDir dir;
  docflow::testing::write_pairs(dir.path(), "train", 64, 21);
  docflow::testing::write_pairs(dir.path(), "eval", 8, 22);
  auto r = run_command(finetune_command(dir, "--name t --set reader.epochs=1 " + settings));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  Trained t;
  clip::ClipModel start = clip::load_model(std::string(DOCFLOW_SHARED_DIR) + "/fixtures/clip-tiny");
  clip::ClipModel end = clip::load_model((dir.path() / "runs" / "t" / "artifact").string());
  for (const auto& p : start->named_parameters()) t.start[p.key()] = p.value().detach().clone();
  for (const auto& p : end->named_parameters()) t.end[p.key()] = p.value().detach().clone();
  std::ifstream steps(dir.path() / "runs" / "t" / "steps.jsonl");
  for (std::string line; std::getline(steps, line);) t.steps.push_back(nlohmann::json::parse(line));
  return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(freezing_the_vision_tower_trains_only_the_text_tower) {
  Trained t = train_with("--set trainer.freeze=vision");
  BOOST_TEST(!t.changed("vision_model.encoder.layers.0.self_attn.q_proj.weight"));
  BOOST_TEST(!t.changed("visual_projection.weight"));
  BOOST_TEST(t.changed("text_model.encoder.layers.0.self_attn.q_proj.weight"));
  BOOST_TEST(t.changed("text_projection.weight"));
}

BOOST_AUTO_TEST_CASE(trainable_blocks_1_trains_the_last_block_and_what_follows_it) {
  Trained t = train_with("--set trainer.trainable_blocks=1");
  BOOST_TEST(!t.changed("vision_model.encoder.layers.0.mlp.fc1.weight"));
  BOOST_TEST(!t.changed("vision_model.embeddings.patch_embedding.weight"));
  BOOST_TEST(!t.changed("text_model.embeddings.token_embedding.weight"));
  BOOST_TEST(t.changed("vision_model.encoder.layers.1.mlp.fc1.weight"));
  BOOST_TEST(t.changed("text_model.encoder.layers.1.mlp.fc1.weight"));
  BOOST_TEST(t.changed("text_model.final_layer_norm.weight"));
  BOOST_TEST(t.changed("logit_scale"));
}

BOOST_AUTO_TEST_CASE(accumulation_steps_2_takes_one_optimizer_step_per_two_batches) {
  Trained t = train_with("--set trainer.accumulation_steps=2");
  BOOST_REQUIRE(t.steps.size() == 4u);  // 64 pairs in batches of 16
  std::vector<int> steps;
  for (const auto& s : t.steps) steps.push_back(s["step"].get<int>());
  BOOST_TEST((steps == std::vector<int>{0, 1, 1, 2}));
  BOOST_TEST(t.changed("text_projection.weight"));
}

BOOST_AUTO_TEST_CASE(adam_trains_with_finite_losses) {
  Trained t = train_with("--set trainer.optimizer=adam");
  BOOST_REQUIRE(t.steps.size() == 4u);
  for (const auto& s : t.steps) BOOST_TEST(std::isfinite(s["loss"].get<double>()));
  BOOST_TEST(t.changed("vision_model.encoder.layers.0.mlp.fc1.weight"));
}

BOOST_AUTO_TEST_SUITE_END()
