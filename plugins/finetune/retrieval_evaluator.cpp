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
    bool blended = false;
    {
      auto m = run_metrics(*this);
      std::lock_guard<std::mutex> lock(m->mutex);
      blended = m->wise_ft_alpha.has_value();
    }
    if (blended) evaluate("wise-ft", -1);  // "after" is then the blend
    write_report();
  }
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
  report << "# Fine-tuning report\n\nText-to-image retrieval: " << description_ << ", k = " << params().get_int("k")
         << ", before fine-tuning and after the last epoch"
         << (m->wise_ft_alpha ? " blended with the starting weights by WiSE-FT (alpha " + std::to_string(*m->wise_ft_alpha) + ")"
                              : std::string())
         << ".\n\n"
         << table.str();
  if (!m->train_loss.empty()) {
    report << "\n| epoch | train loss |\n| --- | --- |\n";
    for (const auto& [epoch, loss] : m->train_loss) report << "| " << epoch + 1 << " | " << loss << " |\n";
  }
  write_html_report(before, after);
  log().info(name(), "before and after fine-tuning:\n" + table.str());
}

namespace {

// A minimal line chart as inline SVG: a browser shows it with no script.
std::string svg_chart(const std::string& title, const std::vector<std::pair<std::string, std::vector<double>>>& series) {
  const double w = 520, h = 220, pad = 36;
  double lo = 1e300, hi = -1e300;
  std::size_t n = 0;
  for (const auto& [name, ys] : series)
    for (double y : ys) {
      lo = std::min(lo, y);
      hi = std::max(hi, y);
      n = std::max(n, ys.size());
    }
  if (n == 0) return "";
  if (hi <= lo) hi = lo + 1;
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"};
  std::ostringstream out;
  out << "<figure><figcaption>" << title << "</figcaption><svg width='" << w << "' height='" << h
      << "' xmlns='http://www.w3.org/2000/svg'><rect width='100%' height='100%' fill='white' stroke='#ccc'/>";
  out << "<text x='4' y='" << pad - 6 << "' font-size='11'>" << hi << "</text><text x='4' y='" << h - 6
      << "' font-size='11'>" << lo << "</text>";
  std::size_t c = 0;
  for (const auto& [name, ys] : series) {
    out << "<polyline fill='none' stroke='" << colours[c % 5] << "' stroke-width='1.5' points='";
    for (std::size_t i = 0; i < ys.size(); ++i) {
      const double x = pad + (w - 2 * pad) * (ys.size() > 1 ? static_cast<double>(i) / (ys.size() - 1) : 0.5);
      const double y = h - pad - (h - 2 * pad) * (ys[i] - lo) / (hi - lo);
      out << x << "," << y << " ";
    }
    out << "'/><text x='" << w - 150 << "' y='" << 16 + 14 * c << "' font-size='12' fill='" << colours[c % 5] << "'>"
        << name << "</text>";
    ++c;
  }
  out << "</svg></figure>\n";
  return out.str();
}

}  // namespace

void RetrievalEvaluator::write_html_report(const std::map<std::string, double>& before,
                                           const std::map<std::string, double>& after) {
  std::vector<double> loss, lr;
  std::ifstream steps(context().run_dir / "steps.jsonl");
  for (std::string line; std::getline(steps, line);) {
    try {
      auto j = nlohmann::json::parse(line);
      loss.push_back(j.value("loss", 0.0));
      lr.push_back(j.value("lr", 0.0));
    } catch (const std::exception&) {
      // A torn last line of a live file: the plot simply ends earlier.
    }
  }
  auto m = run_metrics(*this);  // caller holds m->mutex
  std::vector<std::pair<std::string, std::vector<double>>> per_epoch;
  for (const char* metric : {"precision_at_k", "ndcg_at_k", "average_precision", "recall_at_k"}) {
    std::vector<double> ys;
    for (const auto& e : m->evaluations) ys.push_back(e.count(metric) ? e.at(metric) : 0.0);
    per_epoch.emplace_back(metric, ys);
  }
  std::ofstream html(context().run_dir / "report.html");
  html << "<!doctype html><html><head><meta charset='utf-8'><title>Fine-tuning report</title>"
          "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
          "padding:4px 10px;text-align:right}</style></head><body><h1>Fine-tuning report</h1>";
  html << "<p>Text-to-image retrieval: " << description_ << ", k = " << params().get_int("k") << ".</p><table><tr><th>metric</th><th>before</th><th>after</th></tr>";
  html << std::fixed << std::setprecision(4);
  for (const auto& [k, v] : before) html << "<tr><td>" << k << "</td><td>" << v << "</td><td>" << after.at(k) << "</td></tr>";
  html << "</table>";
  html << svg_chart("training loss per step", {{"loss", loss}});
  html << svg_chart("learning rate per step", {{"learning rate", lr}});
  html << svg_chart("retrieval metrics: before training, then after each epoch", per_epoch);
  html << "</body></html>\n";
}

}  // namespace docflow::finetune
