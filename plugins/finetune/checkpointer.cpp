#include <fcntl.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "clip/weights.hpp"
#include "docflow/checkpoint.hpp"
#include "docflow/error.hpp"
#include "executors.hpp"

namespace fs = std::filesystem;

namespace docflow::finetune {

double monitored_value(Executor& e, const std::string& monitor, int epoch) {
  auto m = run_metrics(e);
  std::lock_guard<std::mutex> lock(m->mutex);
  if (monitor == "train_loss" && m->train_loss.count(epoch)) return m->train_loss[epoch];
  if (monitor != "train_loss" && !m->evaluations.empty() && m->evaluations.back().count(monitor))
    return m->evaluations.back()[monitor];
  throw Error("no value for monitor '" + monitor + "' at the end of epoch " + std::to_string(epoch + 1) +
              " (train_loss comes from ClipTrainer, metrics from a RetrievalEvaluator placed before this executor)");
}

bool is_better(const std::string& mode, const std::string& monitor, double value, std::optional<double> best,
               double min_delta) {
  if (!best) return true;
  const bool maximise = mode == "max" || (mode == "auto" && monitor.find("loss") == std::string::npos);
  return maximise ? value > *best + min_delta : value < *best - min_delta;
}

Checkpointer::Checkpointer(ExecutorContext c) : Executor(std::move(c)) {}

void Checkpointer::on_event(const Event& e) {
  if (e.kind == Event::Kind::EndOfStream) {
    // A WiSE-FT blend is the run's result: it replaces the best epoch's model.
    if (const std::optional<double> alpha = wise_ft_alpha(*this)) save_artifact("the WiSE-FT blend (alpha " + std::to_string(*alpha) + ")");
    return;
  }
  const std::string monitor = params().get_string("monitor");
  const double value = monitored_value(*this, monitor, e.epoch);
  if (!is_better(params().get_string("mode"), monitor, value, best_)) return;
  best_ = value;
  save_artifact("best " + monitor + " so far (" + std::to_string(value) + ") after epoch " + std::to_string(e.epoch + 1));
}

void Checkpointer::save_artifact(const std::string& why) {
  // Every rank holds the same weights: rank 0 writes the run's artifact.
  if (group().rank() != 0) return;
  auto clip = registry().get<clip::SharedClip>(params().get_string("shared_as"));
  // Write a complete artifact beside the old one, then exchange the two in
  // one atomic rename: at any moment `artifact` is a whole model.
  const fs::path dir = context().run_dir / "artifact", fresh = context().run_dir / "artifact.new";
  fs::remove_all(fresh);
  {
    std::shared_lock<std::shared_mutex> lock(clip->mutex);
    clip::save_pretrained(clip->model, fresh.string());
  }
  if (!params().get_string("vocab").empty()) {
    if (!tokenizer_) tokenizer_ = std::make_unique<clip::Tokenizer>(clip::Tokenizer::load(params().get_string("vocab")));
    tokenizer_->save(fresh.string());
  }
  sync_tree(fresh);
  if (fs::exists(dir)) {
    if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0)
      throw Error("cannot replace " + dir.string() + ": " + std::strerror(errno));
    sync_path(context().run_dir);
    fs::remove_all(fresh);  // now the previous artifact
  } else {
    fs::rename(fresh, dir);
    sync_path(context().run_dir);
  }
  log().info(name(), why + ": saved " + dir.string());
}

}  // namespace docflow::finetune

namespace docflow::finetune {

EarlyStopping::EarlyStopping(ExecutorContext c) : Executor(std::move(c)) {
  if (params().has("baseline") && !params().get("baseline").is_null()) best_ = params().get_double("baseline");
}

void EarlyStopping::on_event(const Event& e) {
  if (e.kind != Event::Kind::EndOfEpoch) return;
  const std::string monitor = params().get_string("monitor");
  const double value = monitored_value(*this, monitor, e.epoch);
  if (is_better(params().get_string("mode"), monitor, value, best_, params().get_double("min_delta"))) {
    best_ = value;
    bad_epochs_ = 0;
    return;
  }
  if (++bad_epochs_ < params().get_int("patience")) return;
  log().info(name(), monitor + " has not improved for " + std::to_string(bad_epochs_) + " epoch(s) (best " +
                         std::to_string(*best_) + "): stopping after epoch " + std::to_string(e.epoch + 1));
  if (context().end_stream) context().end_stream();
}

}  // namespace docflow::finetune
