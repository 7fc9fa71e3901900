#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "clip/loss.hpp"
#include "docarray/evaluate.hpp"
#include "docarray/match.hpp"
#include "docarray/metrics.hpp"
#include "docflow/error.hpp"
#include <nlohmann/json.hpp>

#include "executors.hpp"

namespace docflow::finetune {

RetrievalEvaluator::RetrievalEvaluator(ExecutorContext c) : Executor(std::move(c)) {}

void RetrievalEvaluator::open() {
  clip_ = registry().get<clip::SharedClip>(params().get_string("shared_as"));
  const clip::Tokenizer tokenizer = clip::Tokenizer::load(params().get_string("vocab"));
  EvaluationSet set = params().get_string("data").empty() ? fashion_evaluation_set(params(), tokenizer)
                                                          : pair_evaluation_set(params(), tokenizer);
  index_ = std::move(set.index);
  queries_ = std::move(set.queries);
  ground_truth_ = std::move(set.ground_truth);
  per_label_ = std::move(set.per_label);
  query_image_ = std::move(set.query_image);
  description_ = set.description;
  log().info(name(), description_ + ", k = " + std::to_string(params().get_int("k")));
  if (!Executor::context().resuming) evaluate("before", -1);  // a resumed run has it in its state
}

std::map<std::string, double> RetrievalEvaluator::evaluate(const std::string& stage, int epoch) {
  torch::NoGradGuard no_grad;
  auto encode = [&](docarray::DocumentArray& docs, bool image) {
    std::vector<torch::Tensor> inputs;
    for (const auto& d : docs) inputs.push_back(d.tensor);
    torch::Tensor e;
    {
      std::shared_lock<std::shared_mutex> lock(clip_->mutex);
      e = clip::encode_batched(clip_->model, inputs, image, params().get_int("batch_size"), clip_->device).to(torch::kCPU);
    }
    for (std::size_t i = 0; i < docs.size(); ++i) docs[i].embedding = e[static_cast<std::int64_t>(i)];
  };
  encode(index_, true);
  encode(queries_, false);
  for (auto& q : queries_) q.matches.clear();
  docarray::MatchOptions match;
  match.metric = params().get_string("distance");
  match.limit = static_cast<std::size_t>(params().get_int("limit_matches"));
  docarray::match(queries_, index_, match);
  docarray::EvaluateOptions eval;
  eval.metrics = docarray::metrics::names();
  eval.k = static_cast<int>(params().get_int("k"));
  eval.num_relevant_per_label = per_label_;
  if (!ground_truth_.empty()) eval.ground_truth = &ground_truth_;
  std::map<std::string, double> result = docarray::evaluate(queries_, eval);
  if (!query_image_.empty()) result["val_loss"] = validation_loss();
  if (params().get_int("gather_examples") > 0) gather_examples(stage == "before" ? "before" : "after");
  {
    auto m = run_metrics(*this);
    std::lock_guard<std::mutex> lock(m->mutex);
    m->evaluations.push_back(result);
  }
  std::ostringstream line;
  line << "{\"stage\":\"" << stage << "\",\"epoch\":" << epoch;
  for (const auto& [k, v] : result) line << ",\"" << k << "\":" << v;
  line << "}";
  append_jsonl(*this, "metrics.jsonl", line.str());
  std::ostringstream msg;
  msg << std::fixed << std::setprecision(3) << "evaluation " << (epoch < 0 ? "before training" : "after epoch " + std::to_string(epoch + 1))
      << ": precision_at_k " << result["precision_at_k"] << ", recall_at_k " << result["recall_at_k"] << ", ndcg_at_k "
      << result["ndcg_at_k"];
  log().info(name(), msg.str());
  return result;
}

bool RetrievalEvaluator::is_relevant(std::size_t query, const docarray::Document& match) const {
  if (!ground_truth_.empty()) return ground_truth_[query].matches.contains(match.id);
  const docarray::Document* image = index_.find(match.id);  // matches carry ids and scores, not tags
  const auto *a = queries_[query].tags.find("label"), *b = image ? image->tags.find("label") : nullptr;
  return a && b && a->dump() == b->dump();
}

// Queries spread evenly over the set (so that every class shows), top 5 each.
void RetrievalEvaluator::gather_examples(const std::string& stage) {
  const auto n = static_cast<std::size_t>(params().get_int("gather_examples"));
  std::vector<GatheredExample> out;
  for (std::size_t k = 0; k < std::min(n, queries_.size()); ++k) {
    const std::size_t q = k * queries_.size() / std::min(n, queries_.size());
    GatheredExample g;
    g.query = queries_[q].text;
    for (std::size_t m = 0; m < std::min<std::size_t>(5, queries_[q].matches.size()); ++m) {
      g.images.push_back(queries_[q].matches[m].id);
      g.relevant.push_back(is_relevant(q, queries_[q].matches[m]));
    }
    out.push_back(std::move(g));
  }
  examples_[stage] = std::move(out);
}

// CLIPLoss over the held-out pairs, in batches as training sees them.
double RetrievalEvaluator::validation_loss() const {
  torch::Tensor images = index_.embeddings(), texts = queries_.embeddings();
  const auto n = static_cast<std::int64_t>(query_image_.size()), batch = params().get_int("batch_size");
  torch::Tensor rows = torch::tensor(query_image_, torch::kLong);
  double total = 0;
  std::int64_t counted = 0;
  std::shared_lock<std::shared_mutex> lock(clip_->mutex);
  torch::Tensor logit_scale = clip_->model->logit_scale.detach().to(torch::kCPU);
  for (std::int64_t start = 0; start + 1 < n; start += batch) {
    const std::int64_t end = std::min(n, start + batch);
    torch::Tensor loss = clip::clip_loss(images.index_select(0, rows.slice(0, start, end)), texts.slice(0, start, end), logit_scale);
    total += loss.item<double>() * static_cast<double>(end - start);
    counted += end - start;
  }
  return counted ? total / static_cast<double>(counted) : 0.0;
}

void RetrievalEvaluator::on_event(const Event& e) {
  if (e.kind == Event::Kind::EndOfEpoch) evaluate("epoch", e.epoch);
  if (e.kind == Event::Kind::EndOfStream) {
    if (wise_ft_alpha(*this)) evaluate("wise-ft", -1);  // "after" is then the blend
    write_report();
  }
}

}  // namespace docflow::finetune
