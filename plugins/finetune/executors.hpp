#pragma once
// The fine-tuning job's executors: what Finetuner did in its cloud, as a flow.
#include <chrono>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "clip/shared_model.hpp"
#include "docflow/gradient_reducer.hpp"
#include "clip/tokenizer.hpp"
#include "docflow/executor.hpp"
#include "epoch_sampler.hpp"
#include "evaluation_set.hpp"
#include "fashion_mnist.hpp"
#include "pairs.hpp"

namespace docflow::finetune {

// Metrics of the run so far, shared by name ("run_metrics") between the
// trainer (train_loss per epoch), the evaluator and the checkpointer.
struct RunMetrics {
  std::mutex mutex;
  std::vector<std::map<std::string, double>> evaluations;  // [0] is before training
  std::map<int, double> train_loss;                       // per epoch
  std::optional<double> wise_ft_alpha;                    // set when WiSEFT blended the weights at the end
};

std::shared_ptr<RunMetrics> run_metrics(Executor& e);
// The alpha WiSEFT blended the weights with, once it has (at the end).
std::optional<double> wise_ft_alpha(Executor& e);

// What a reader tells the trainer ("training_plan"): its schedulers need the
// run's length, its progress bar the epoch's.
struct TrainingPlan {
  std::int64_t batches_per_epoch = 0, epochs = 0;
  std::int64_t batches() const { return batches_per_epoch * epochs; }
};
// Appends one JSON line to RUN_DIR/NAME.
void append_jsonl(const Executor& e, const std::string& name, const std::string& json);

// The source: Fashion-MNIST examples as (image, caption) pairs with a label.
class FashionMnistReader : public Source {
 public:
  explicit FashionMnistReader(ExecutorContext c);
  void open() override;
  std::optional<Item> next() override;
  std::string endpoint() const override { return params().get_string("endpoint"); }
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  void start_epoch();
  docarray::Document image_document(std::int64_t i, int label, int size) const;
  FashionMnist data_;
  EpochSampler sampler_;
  std::mt19937_64 rng_;
  std::vector<std::int64_t> order_;
  std::int64_t count_ = 0, epoch_ = 0;
  std::size_t position_ = 0;
  bool epoch_started_ = false;  // the shuffle happens at the first batch: the state at a boundary is (epoch, rng)
};

// The source for a user's data: image-caption pairs from a CSV/TSV, JSON
// Lines documents or a folder (see pairs.hpp), shuffled per epoch with a
// seed. Images are decoded and preprocessed `read_ahead` batches ahead on
// worker threads, so that the trainer does not wait for them.
class PairReader : public Source {
 public:
  explicit PairReader(ExecutorContext c);
  void open() override;
  void close() override;
  std::optional<Item> next() override;
  std::string endpoint() const override { return params().get_string("endpoint"); }
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  void start_epoch();
  void launch_batches();
  docarray::DocumentArray make_batch(std::vector<std::size_t> records) const;
  std::vector<PairRecord> records_;
  EpochSampler sampler_;
  std::mt19937_64 rng_;
  std::vector<std::size_t> order_;
  std::size_t launched_ = 0;  // the position in order_ of the next batch to start decoding
  std::deque<std::future<docarray::DocumentArray>> ahead_;
  std::int64_t epoch_ = 0;
  bool epoch_started_ = false;
  mutable std::atomic<std::int64_t> skipped_{0};
};

// CLIPLoss on the embeddings the training-mode encoders attached (image and
// text chunks of each parent), backward, one optimizer over both towers.
class ClipTrainer : public Executor {
 public:
  explicit ClipTrainer(ExecutorContext c);
  void open() override;
  void on_event(const Event& e) override;
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  void train(Request& r);
  torch::Tensor step_loss(const torch::Tensor& image, const torch::Tensor& text);
  double loss_value(const torch::Tensor& loss);
  void apply_step();
  // Distributed: averages the gradients, from backward on (see gradient_reducer.hpp).
  std::unique_ptr<GradientReducer> reducer_;
  // this epoch's and the last step's wait for the gradients' allreduce after backward
  double allreduce_seconds_ = 0, last_allreduce_seconds_ = 0;
  std::shared_ptr<clip::SharedClip> clip_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> parameters_;
  std::int64_t step_ = 0, micro_ = 0, total_steps_ = 0;
  double epoch_loss_ = 0, last_finite_loss_ = 0;
  std::int64_t epoch_batches_ = 0;
  int epoch_ = 0;  // the epoch in progress (0-based)
  std::shared_ptr<TrainingPlan> plan_;
  void show_progress(double loss);
  std::chrono::steady_clock::time_point epoch_start_;
  std::size_t epoch_examples_ = 0;
  std::ofstream steps_;  // RUN_DIR/steps.jsonl, one line per batch
};

// One example query and its top images at one evaluation (gather_examples).
struct GatheredExample {
  std::string query;
  std::vector<std::string> images;  // index ids, best first
  std::vector<bool> relevant;
};

// Text queries against an index of images, both encoded with the current
// model; the nine retrieval metrics before training and after every epoch.
class RetrievalEvaluator : public Executor {
 public:
  explicit RetrievalEvaluator(ExecutorContext c);
  void open() override;
  void on_event(const Event& e) override;
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  std::map<std::string, double> evaluate(const std::string& stage, int epoch);
  void write_report();
  void write_html_report(const std::map<std::string, double>& before, const std::map<std::string, double>& after);
  std::shared_ptr<clip::SharedClip> clip_;
  docarray::DocumentArray index_, queries_, ground_truth_;
  std::map<std::string, int> per_label_;
  std::string description_;
  std::vector<std::int64_t> query_image_;  // pairs: for val_loss
  double validation_loss() const;
  // gather_examples: "before" and "after" (the latest evaluation).
  std::map<std::string, std::vector<GatheredExample>> examples_;
  void gather_examples(const std::string& stage);
  bool is_relevant(std::size_t query, const docarray::Document& match) const;
  std::string examples_markdown();  // also writes the thumbnails (RUN_DIR/examples/ID.png)
  std::string examples_html();
};

// Keeps the best model (by `monitor`) as a Hugging Face artifact, written
// atomically, with the tokenizer files it needs.
class Checkpointer : public Executor {
 public:
  explicit Checkpointer(ExecutorContext c);
  void on_event(const Event& e) override;
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  void save_artifact(const std::string& why);
  std::optional<double> best_;
  std::unique_ptr<clip::Tokenizer> tokenizer_;  // loaded once, saved with every artifact
};

// WiSE-FT (Wortsman et al., 2022): at the end of the run, the weights
// become (1 - alpha) * starting + alpha * fine-tuned, which keeps much of the
// starting model's robustness. The evaluator then evaluates the blend, and
// the Checkpointer saves it as the artifact.
class WiSEFT : public Executor {
 public:
  explicit WiSEFT(ExecutorContext c);
  void open() override;
  void on_event(const Event& e) override;
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  std::shared_ptr<clip::SharedClip> clip_;
  std::map<std::string, torch::Tensor> start_;  // the weights before training
};

// Ends the run cleanly at the end of an epoch when `monitor` has not improved
// by `min_delta` for `patience` epochs (or never beat `baseline`).
class EarlyStopping : public Executor {
 public:
  explicit EarlyStopping(ExecutorContext c);
  void on_event(const Event& e) override;
  void save_state(const std::filesystem::path& dir) override;
  void load_state(const std::filesystem::path& dir) override;

 private:
  std::optional<double> best_;
  std::int64_t bad_epochs_ = 0;
};

// The metric `monitor` at the end of `epoch`, from the trainer (train_loss)
// or the last evaluation; throws naming the monitor when there is none.
double monitored_value(Executor& e, const std::string& monitor, int epoch);
// `mode` auto means min for losses, max for everything else.
bool is_better(const std::string& mode, const std::string& monitor, double value, std::optional<double> best,
               double min_delta = 0.0);

}  // namespace docflow::finetune
