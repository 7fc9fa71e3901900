#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

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
  html << "<p>" << index_.size() << " test images retrieved by " << queries_.size() << " held-out text queries, k = "
       << params().get_int("k") << ".</p><table><tr><th>metric</th><th>before</th><th>after</th></tr>";
  html << std::fixed << std::setprecision(4);
  for (const auto& [k, v] : before) html << "<tr><td>" << k << "</td><td>" << v << "</td><td>" << after.at(k) << "</td></tr>";
  html << "</table>";
  html << svg_chart("training loss per step", {{"loss", loss}});
  html << svg_chart("learning rate per step", {{"learning rate", lr}});
  html << svg_chart("retrieval metrics: before training, then after each epoch", per_epoch);
  html << "</body></html>\n";
}

}  // namespace docflow::finetune
