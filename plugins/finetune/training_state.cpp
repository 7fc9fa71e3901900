// What each executor of the fine-tuning job puts in a training checkpoint
// (see docflow/checkpoint.hpp): together, everything a resumed run needs to
// produce the same losses as an uninterrupted one.
#include <ATen/CPUGeneratorImpl.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clip/safetensors.hpp"
#include "clip/weights.hpp"
#include "docflow/error.hpp"
#include "executors.hpp"

namespace fs = std::filesystem;

namespace docflow::finetune {
namespace {

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error("cannot write " + path.string());
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("the checkpoint lacks " + path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Error(path.string() + " is unreadable: " + e.what());
  }
}

// std::optional<double> as JSON null or a number.
nlohmann::json optional_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
std::optional<double> optional_of(const nlohmann::json& j) {
  return j.is_null() ? std::nullopt : std::optional<double>(j.get<double>());
}

// A reader: the next epoch and the generator that shuffles it (and draws
// its captions). At a boundary the next epoch is not shuffled yet.
void save_reader_state(const fs::path& dir, std::int64_t epoch, const std::mt19937_64& rng) {
  std::ostringstream text;
  text << rng;
  write_json(dir / "state.json", {{"epoch", epoch}, {"rng", text.str()}});
}

void load_reader_state(const fs::path& dir, std::int64_t& epoch, std::mt19937_64& rng) {
  const nlohmann::json j = read_json(dir / "state.json");
  epoch = j.at("epoch").get<std::int64_t>();
  std::istringstream text(j.at("rng").get<std::string>());
  text >> rng;
  if (!text) throw Error("the reader's random generator state in " + (dir / "state.json").string() + " is unreadable");
}

}  // namespace

void FashionMnistReader::save_state(const fs::path& dir) { save_reader_state(dir, epoch_, rng_); }

void FashionMnistReader::load_state(const fs::path& dir) {
  load_reader_state(dir, epoch_, rng_);
  epoch_started_ = false;
}

void PairReader::save_state(const fs::path& dir) { save_reader_state(dir, epoch_, rng_); }

void PairReader::load_state(const fs::path& dir) {
  load_reader_state(dir, epoch_, rng_);
  epoch_started_ = false;
}

// The trainer: both towers' weights (exact, as safetensors), the optimizer's
// moments and step counts, the schedule's position, LibTorch's generator and
// the per-epoch losses.
void ClipTrainer::save_state(const fs::path& dir) {
  {
    std::shared_lock<std::shared_mutex> lock(clip_->mutex);
    std::map<std::string, torch::Tensor> weights;
    for (const auto& p : clip_->model->named_parameters(true)) weights[p.key()] = p.value().detach().to(torch::kCPU);
    clip::write_safetensors((dir / "model.safetensors").string(), weights);
    torch::save(*optimizer_, (dir / "optimizer.pt").string());
  }
  torch::Tensor generator;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    generator = gen.get_state();
  }
  torch::save(generator, (dir / "generator.pt").string());
  nlohmann::json losses = nlohmann::json::object();
  {
    auto m = run_metrics(*this);
    std::lock_guard<std::mutex> lock(m->mutex);
    for (const auto& [epoch, loss] : m->train_loss) losses[std::to_string(epoch)] = loss;
  }
  write_json(dir / "state.json",
             {{"step", step_}, {"micro_step", micro_}, {"last_finite_loss", last_finite_loss_}, {"train_loss", losses}});
}

void ClipTrainer::load_state(const fs::path& dir) {
  const nlohmann::json j = read_json(dir / "state.json");
  {
    std::unique_lock<std::shared_mutex> lock(clip_->mutex);
    const std::string weights = (dir / "model.safetensors").string();
    auto model = clip_->model;
    clip::load_state(model, clip::read_safetensors(weights).tensors, weights);
    torch::load(*optimizer_, (dir / "optimizer.pt").string());
  }
  torch::Tensor generator;
  torch::load(generator, (dir / "generator.pt").string());
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(generator);
  }
  step_ = j.at("step").get<std::int64_t>();
  micro_ = j.at("micro_step").get<std::int64_t>();
  last_finite_loss_ = j.at("last_finite_loss").get<double>();
  auto m = run_metrics(*this);
  std::lock_guard<std::mutex> lock(m->mutex);
  m->train_loss.clear();
  for (const auto& [epoch, loss] : j.at("train_loss").items()) m->train_loss[std::stoi(epoch)] = loss.get<double>();
  epoch_ = m->train_loss.empty() ? 0 : m->train_loss.rbegin()->first + 1;
}

// The evaluator: every evaluation so far (the first is "before training").
void RetrievalEvaluator::save_state(const fs::path& dir) {
  auto m = run_metrics(*this);
  std::lock_guard<std::mutex> lock(m->mutex);
  nlohmann::json examples = nlohmann::json::object();
  for (const auto& [stage, list] : examples_)
    for (const auto& g : list) examples[stage].push_back({{"query", g.query}, {"images", g.images}, {"relevant", g.relevant}});
  write_json(dir / "state.json", {{"evaluations", m->evaluations}, {"examples", examples}});
}

void RetrievalEvaluator::load_state(const fs::path& dir) {
  const nlohmann::json j = read_json(dir / "state.json");
  auto m = run_metrics(*this);
  std::lock_guard<std::mutex> lock(m->mutex);
  m->evaluations = j.at("evaluations").get<std::vector<std::map<std::string, double>>>();
  examples_.clear();
  for (const auto& [stage, list] : j.at("examples").items())
    for (const auto& g : list)
      examples_[stage].push_back({g.at("query").get<std::string>(), g.at("images").get<std::vector<std::string>>(),
                                  g.at("relevant").get<std::vector<bool>>()});
}

void Checkpointer::save_state(const fs::path& dir) { write_json(dir / "state.json", {{"best", optional_json(best_)}}); }

void Checkpointer::load_state(const fs::path& dir) { best_ = optional_of(read_json(dir / "state.json").at("best")); }

void EarlyStopping::save_state(const fs::path& dir) {
  write_json(dir / "state.json", {{"best", optional_json(best_)}, {"bad_epochs", bad_epochs_}});
}

void EarlyStopping::load_state(const fs::path& dir) {
  const nlohmann::json j = read_json(dir / "state.json");
  best_ = optional_of(j.at("best"));
  bad_epochs_ = j.at("bad_epochs").get<std::int64_t>();
  // It had already ended the run (the crash came while the run was closing):
  // end it again rather than train an epoch it would not have trained.
  if (bad_epochs_ >= params().get_int("patience") && context().end_stream) context().end_stream();
}

}  // namespace docflow::finetune
