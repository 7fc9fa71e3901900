#include <filesystem>

#include "clip/weights.hpp"
#include "docflow/error.hpp"
#include "executors.hpp"

namespace fs = std::filesystem;

namespace docflow::finetune {

Checkpointer::Checkpointer(ExecutorContext c) : Executor(std::move(c)) {}

void Checkpointer::on_event(const Event& e) {
  if (e.kind != Event::Kind::EndOfEpoch) return;
  const std::string monitor = params().get_string("monitor");
  std::optional<double> value;
  {
    auto m = run_metrics(*this);
    std::lock_guard<std::mutex> lock(m->mutex);
    if (monitor == "train_loss") {
      if (m->train_loss.count(e.epoch)) value = m->train_loss[e.epoch];
    } else if (!m->evaluations.empty() && m->evaluations.back().count(monitor)) {
      value = m->evaluations.back()[monitor];
    }
  }
  if (!value) throw Error("no value for monitor '" + monitor + "' at the end of epoch " + std::to_string(e.epoch + 1) +
                          " (is a RetrievalEvaluator before the checkpointer?)");
  std::string mode = params().get_string("mode");
  if (mode == "auto") mode = monitor.find("loss") != std::string::npos ? "min" : "max";
  const bool better = !best_ || (mode == "max" ? *value > *best_ : *value < *best_);
  if (!better) return;
  best_ = value;
  auto clip = registry().get<clip::SharedClip>(params().get_string("shared_as"));
  // Write a complete artifact beside the old one, then swap: a crash at any
  // moment leaves the last good artifact intact.
  const fs::path dir = context().run_dir / "artifact", fresh = context().run_dir / "artifact.new",
                 old = context().run_dir / "artifact.old";
  fs::remove_all(fresh);
  {
    std::shared_lock<std::shared_mutex> lock(clip->mutex);
    clip::save_pretrained(clip->model, fresh.string());
  }
  if (!params().get_string("vocab").empty())
    clip::Tokenizer::from_bpe_file(params().get_string("vocab")).save(fresh.string());
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(fresh, dir);
  fs::remove_all(old);
  log().info(name(), "best " + monitor + " so far (" + std::to_string(*value) + ") after epoch " + std::to_string(e.epoch + 1) +
                         ": saved " + dir.string());
}

}  // namespace docflow::finetune
