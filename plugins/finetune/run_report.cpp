// The run's report: report.md (the before/after table Finetuner users know,
// the loss per epoch, example queries) and report.html (the same with SVG
// plots of the loss and learning rate per step and the metrics per epoch).
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clip/image.hpp"
#include "executors.hpp"

namespace docflow::finetune {

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
  report << examples_markdown();
  write_html_report(before, after);
  log().info(name(), "before and after fine-tuning:\n" + table.str());
}

namespace {

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '\'') out += "&#39;";
    else out += c;
  }
  return out;
}

}  // namespace

// The thumbnails: RUN_DIR/examples/ID.png, shown by both reports.
std::string RetrievalEvaluator::examples_markdown() {
  if (examples_.empty()) return "";
  const std::filesystem::path dir = context().run_dir / "examples";
  std::filesystem::create_directories(dir);
  std::ostringstream md;
  md << "\n## Example queries\n\nThe top images for a few held-out queries, before fine-tuning and after "
        "(relevant ones marked ✓).\n";
  const auto& before = examples_["before"];
  const auto& after = examples_.count("after") ? examples_["after"] : before;
  for (std::size_t i = 0; i < before.size() && i < after.size(); ++i) {
    md << "\n**" << before[i].query << "**\n\n";
    for (const auto* stage : {&before[i], &after[i]}) {
      md << (stage == &before[i] ? "before: " : "after: ");
      for (std::size_t k = 0; k < stage->images.size(); ++k) {
        const std::string& id = stage->images[k];
        const std::filesystem::path png = dir / (id + ".png");
        if (!std::filesystem::exists(png))
          if (const docarray::Document* d = index_.find(id))
            std::ofstream(png, std::ios::binary) << clip::encode_png(clip::from_normalized_tensor(d->tensor));
        md << "![" << id << "](examples/" << id << ".png)" << (stage->relevant[k] ? "✓ " : " ");
      }
      md << "\n\n";
    }
  }
  return md.str();
}

// Uses the thumbnails examples_markdown() wrote.
std::string RetrievalEvaluator::examples_html() {
  if (examples_.empty()) return "";
  const auto& before = examples_["before"];
  const auto& after = examples_.count("after") ? examples_["after"] : before;
  std::ostringstream html;
  html << "<h2>Example queries</h2><p>The top images before fine-tuning and after; green: relevant, red: not.</p>"
          "<table class='examples'>";
  for (std::size_t i = 0; i < before.size() && i < after.size(); ++i) {
    html << "<tr><th colspan='2' style='text-align:left'>" << html_escape(before[i].query) << "</th></tr>";
    for (const auto* stage : {&before[i], &after[i]}) {
      html << "<tr><td>" << (stage == &before[i] ? "before" : "after") << "</td><td style='text-align:left'>";
      for (std::size_t k = 0; k < stage->images.size(); ++k)
        html << "<img src='examples/" << html_escape(stage->images[k]) << ".png' width='64' height='64' "
             << "style='image-rendering:pixelated;margin:2px;border:3px solid " << (stage->relevant[k] ? "#2ca02c" : "#d62728")
             << "' title='" << html_escape(stage->images[k]) << "'>";
      html << "</td></tr>";
    }
  }
  html << "</table>";
  return html.str();
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
  html << "<p>Text-to-image retrieval: " << html_escape(description_) << ", k = " << params().get_int("k") << ".</p><table><tr><th>metric</th><th>before</th><th>after</th></tr>";
  html << std::fixed << std::setprecision(4);
  for (const auto& [k, v] : before) html << "<tr><td>" << k << "</td><td>" << v << "</td><td>" << after.at(k) << "</td></tr>";
  html << "</table>";
  html << svg_chart("training loss per step", {{"loss", loss}});
  html << svg_chart("learning rate per step", {{"learning rate", lr}});
  html << svg_chart("retrieval metrics: before training, then after each epoch", per_epoch);
  html << examples_html();
  html << "</body></html>\n";
}

}  // namespace docflow::finetune
