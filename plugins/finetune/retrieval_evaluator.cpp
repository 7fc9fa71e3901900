#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "docarray/evaluate.hpp"
#include "docarray/match.hpp"
#include "docarray/metrics.hpp"
#include "docflow/error.hpp"
#include "executors.hpp"

namespace docflow::finetune {

RetrievalEvaluator::RetrievalEvaluator(ExecutorContext c) : Executor(std::move(c)) {}

void RetrievalEvaluator::open() {
  clip_ = registry().get<clip::SharedClip>(params().get_string("shared_as"));
  FashionMnist data = load_fashion_mnist(params().get_string("path"), params().get_string("split"));
  const std::int64_t limit = params().get_int("limit");
  const std::int64_t n = limit < 0 ? data.count : std::min(limit, data.count);
  const int size = static_cast<int>(params().get_int("image_size"));
  for (std::int64_t i = 0; i < n; ++i) {
    docarray::Document d("image-" + std::to_string(i));
    d.modality = "image";
    d.tensor = image_tensor(data, i, size);
    d.tags["label"] = static_cast<int>(data.labels[static_cast<std::size_t>(i)]);
    ++per_label_[d.tags.find("label")->dump()];
    index_.append(std::move(d));
  }
  clip::Tokenizer tok = clip::Tokenizer::from_bpe_file(params().get_string("vocab"));
  const auto context = static_cast<std::size_t>(params().get_int("context_length"));
  for (int label = 0; label < 10; ++label)
    for (const auto& q : evaluation_queries(label)) {
      docarray::Document d;
      d.text = q;
      d.modality = "text";
      d.tags["label"] = label;
      d.tensor = torch::tensor(tok.tokenize(q, context, true), torch::kLong);
      queries_.append(std::move(d));
    }
  log().info(name(), std::to_string(queries_.size()) + " held-out queries against " + std::to_string(index_.size()) +
                         " test images, k = " + std::to_string(params().get_int("k")));
  evaluate("before", -1);
}

std::map<std::string, double> RetrievalEvaluator::evaluate(const std::string& stage, int epoch) {
  torch::NoGradGuard no_grad;
  auto encode = [&](docarray::DocumentArray& docs, bool image) {
    const std::int64_t batch = params().get_int("batch_size");
    std::shared_lock<std::shared_mutex> lock(clip_->mutex);
    for (std::size_t start = 0; start < docs.size(); start += static_cast<std::size_t>(batch)) {
      const std::size_t stop = std::min(docs.size(), start + static_cast<std::size_t>(batch));
      std::vector<torch::Tensor> xs;
      for (std::size_t i = start; i < stop; ++i) xs.push_back(docs[i].tensor);
      torch::Tensor x = torch::stack(xs).to(clip_->device);
      torch::Tensor e = (image ? clip_->model->encode_image(x) : clip_->model->encode_text(x)).to(torch::kCPU);
      for (std::size_t i = start; i < stop; ++i) docs[i].embedding = e[static_cast<std::int64_t>(i - start)];
    }
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
  std::map<std::string, double> result = docarray::evaluate(queries_, eval);
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

void RetrievalEvaluator::on_event(const Event& e) {
  if (e.kind == Event::Kind::EndOfEpoch) evaluate("epoch", e.epoch);
  if (e.kind == Event::Kind::EndOfStream) write_report();
}

void RetrievalEvaluator::write_report() {
  auto m = run_metrics(*this);
  std::lock_guard<std::mutex> lock(m->mutex);
  if (m->evaluations.size() < 2) return;
  const auto &before = m->evaluations.front(), &after = m->evaluations.back();
  std::ostringstream table;
  table << std::fixed << std::setprecision(4);
  table << "| metric | before | after |\n| --- | --- | --- |\n";
  for (const auto& [k, v] : before) table << "| " << k << " | " << v << " | " << after.at(k) << " |\n";
  std::ofstream report(context().run_dir / "report.md");
  report << "# Fine-tuning report\n\nRetrieval of " << index_.size() << " test images by " << queries_.size()
         << " held-out text queries, k = " << params().get_int("k") << ", before fine-tuning and after the last epoch.\n\n"
         << table.str();
  if (!m->train_loss.empty()) {
    report << "\n| epoch | train loss |";
    for (std::size_t i = 1; i < m->evaluations.size(); ++i) report << "";
    report << "\n| --- | --- |\n";
    for (const auto& [epoch, loss] : m->train_loss) report << "| " << epoch + 1 << " | " << loss << " |\n";
  }
  log().info(name(), "before and after fine-tuning:\n" + table.str());
}

}  // namespace docflow::finetune
