#include <cmath>
#include <fstream>
#include <sstream>

#include "clip/fused_adamw.hpp"
#include "clip/loss.hpp"
#include "docflow/error.hpp"
#include "executors.hpp"
#include "feature_gather.hpp"
#include "freezing.hpp"

namespace docflow::finetune {

std::shared_ptr<RunMetrics> run_metrics(Executor& e) {
  if (auto m = e.registry().find<RunMetrics>("run_metrics")) return m;
  auto m = std::make_shared<RunMetrics>();
  e.registry().publish("run_metrics", m);
  return m;
}

void append_jsonl(const Executor& e, const std::string& name, const std::string& json) {
  std::ofstream out(e.context().run_dir / name, std::ios::app);
  out << json << "\n";
}

namespace {
bool is_no_decay(const std::string& name, const torch::Tensor& p) {
  // No weight decay for biases, LayerNorm gains, embeddings of one dimension, logit_scale.
  return p.dim() < 2 || name.find("bias") != std::string::npos || name.find("norm") != std::string::npos ||
         name == "logit_scale";
}
}  // namespace

ClipTrainer::ClipTrainer(ExecutorContext c) : Executor(std::move(c)) {
  on("/train", [this](Request& r) { train(r); });
}

void ClipTrainer::open() {
  clip_ = registry().get<clip::SharedClip>(params().get_string("shared_as"));
  torch::manual_seed(static_cast<std::uint64_t>(params().get_int("seed")));
  const std::string freeze = params().get_string("freeze");
  const std::int64_t blocks = params().get_int("trainable_blocks");
  std::vector<torch::Tensor> decay, no_decay;
  std::int64_t trainable = 0, total = 0;
  for (auto& p : clip_->model->named_parameters()) {
    const bool frozen = !is_trainable(p.key(), clip_->model->config, freeze, blocks);
    total += p.value().numel();
    if (!frozen) trainable += p.value().numel();
    p.value().set_requires_grad(!frozen);
    if (frozen) continue;
    (is_no_decay(p.key(), p.value()) ? no_decay : decay).push_back(p.value());
    parameters_.push_back(p.value());
  }
  const double lr = params().get_double("learning_rate"), wd = params().get_double("weight_decay");
  const auto betas = std::make_tuple(params().get_double("beta1"), params().get_double("beta2"));
  const double eps = params().get_double("eps");
  if (params().get_string("optimizer") == "adamw") {
    auto with = [&](double decay_rate) {
      return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).betas(betas).eps(eps).weight_decay(decay_rate));
    };
    optimizer_ = std::make_unique<clip::FusedAdamW>(std::vector<torch::optim::OptimizerParamGroup>{
        torch::optim::OptimizerParamGroup(decay, with(wd)), torch::optim::OptimizerParamGroup(no_decay, with(0.0))});
  } else {
    optimizer_ = std::make_unique<torch::optim::Adam>(parameters_, torch::optim::AdamOptions(lr).betas(betas).eps(eps));
  }
  total_steps_ = params().get_int("total_steps");
  if (total_steps_ <= 0) {
    if ((plan_ = registry().find<TrainingPlan>("training_plan")))
      total_steps_ = plan_->batches() / params().get_int("accumulation_steps");
  }
  const std::string sched = params().get_string("scheduler");
  if ((sched == "linear" || sched == "cosine") && total_steps_ <= 0)
    throw Error("scheduler '" + sched + "' needs the run's length: set total_steps, or use a reader that publishes it");
  clip_->model->train();
  if (group().size() > 1) {
    // Every rank starts from rank 0's weights (as DistributedDataParallel
    // does), whatever each one loaded or drew.
    torch::NoGradGuard no_grad;
    for (auto& p : clip_->model->parameters()) {
      torch::Tensor t = p.detach();
      group().broadcast(t, 0);
    }
    // Buckets in the model's order; the token embedding is a table of which
    // a batch touches a few hundred rows of 49,408 (101 MB of ViT-B/32's 605
    // MB of gradients): only the touched rows travel.
    std::vector<GradientReducer::Parameter> reduced;
    for (auto& p : clip_->model->named_parameters())
      if (p.value().requires_grad())
        reduced.push_back({p.value(), p.key().find("token_embedding") != std::string::npos});
    reducer_ = std::make_unique<GradientReducer>(group(), std::move(reduced));
    log().info(name(), "data-parallel over " + std::to_string(group().size()) + " ranks: rank " + std::to_string(group().rank()) +
                           (params().get_bool("gather_with_grad") ? ", CLIPLoss on features gathered with their gradients" : "") +
                           (params().get_bool("local_loss") ? ", local loss" : ""));
  }
  if (trainable == 0) throw Error("nothing to train: freeze '" + freeze + "' and trainable_blocks " + std::to_string(blocks) +
                                  " leave no parameter");
  if (trainable < total)
    log().info(name(), "training " + std::to_string(trainable) + " of " + std::to_string(total) + " parameters (freeze: " +
                           freeze + ", trainable_blocks: " + std::to_string(blocks) + ")");
  steps_.open(context().run_dir / "steps.jsonl", std::ios::app);
  if (!steps_) throw Error("cannot write " + (context().run_dir / "steps.jsonl").string());
  epoch_start_ = std::chrono::steady_clock::now();
  log().info(name(), "CLIPLoss with " + params().get_string("optimizer") + ", lr " + std::to_string(lr) + ", " + sched +
                         " schedule over " + std::to_string(total_steps_) + " steps");
}

void ClipTrainer::train(Request& request) {
  if (epoch_batches_ == 0) epoch_start_ = std::chrono::steady_clock::now();  // not counting evaluations and checkpoints
  std::vector<torch::Tensor> images, texts;
  for (const auto& pair : request.docs) {
    const docarray::Document *image = nullptr, *text = nullptr;
    for (const auto& c : pair.chunks) {
      if (c.modality == "image" && c.embedding.defined()) image = &c;
      if (c.modality == "text" && c.embedding.defined()) text = &c;
    }
    if (!image || !text)
      throw Error("example '" + pair.id + "' lacks an image or a text chunk with an embedding; put ClipImageEncoder and "
                  "ClipTextEncoder (mode: training, traversal_path: \"@c\") before the trainer");
    if (!image->embedding.requires_grad() && !text->embedding.requires_grad())  // one tower may be frozen
      throw Error("example '" + pair.id + "': its embeddings carry no autograd graph; set mode: training on the encoders");
    images.push_back(image->embedding);
    texts.push_back(text->embedding);
  }
  torch::Tensor loss = step_loss(torch::stack(images), torch::stack(texts));
  if (!loss.defined()) return;  // CLIPLoss needs negatives
  const double value = loss_value(loss);
  if (!std::isfinite(value))
    throw Error(std::string("the loss is ") + (std::isnan(value) ? "NaN" : value > 0 ? "+inf" : "-inf") + " at step " + std::to_string(step_ + 1) +
                " (last finite loss " + std::to_string(last_finite_loss_) + "); stopping before any checkpoint is written");
  last_finite_loss_ = value;
  const bool last_micro = (micro_ + 1) % params().get_int("accumulation_steps") == 0;
  if (reducer_ && last_micro && params().get_bool("overlap_allreduce")) reducer_->prepare();
  (loss / static_cast<double>(params().get_int("accumulation_steps"))).backward();
  epoch_loss_ += value;
  ++epoch_batches_;
  epoch_examples_ += images.size();
  ++micro_;
  if (last_micro) apply_step();
  // Release the graph: the documents move on without it.
  for (auto& pair : request.docs)
    for (auto& c : pair.chunks)
      if (c.embedding.defined()) c.embedding = c.embedding.detach();
  std::ostringstream line;
  line << "{\"step\":" << step_ << ",\"loss\":" << value << ",\"lr\":" << optimizer_->param_groups()[0].options().get_lr()
       << ",\"logit_scale\":" << clip_->model->logit_scale.item<double>() << "}";
  steps_ << line.str() << "\n" << std::flush;  // flushed: `flow logs` and plots read it live
  show_progress(value);
  if (step_ % params().get_int("log_every") == 0 && micro_ % params().get_int("accumulation_steps") == 0) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
    std::ostringstream msg;
    msg << "step " << step_ << "/" << total_steps_ << " loss " << value << " lr "
        << optimizer_->param_groups()[0].options().get_lr() << " "
        << static_cast<int>(static_cast<double>(epoch_examples_) * group().size() / secs) << " examples/s";
    if (group().size() > 1) msg << ", last allreduce after backward " << static_cast<int>(1000 * last_allreduce_seconds_) << " ms";
    log().step(name(), msg.str());
  }
}

// On a terminal: epoch 2/3 [#########-----------] 45/157 loss 2.3146 lr 1.2e-03 410 ex/s 0:32 left
void ClipTrainer::show_progress(double loss) {
  if (!log().shows_progress()) return;
  const std::int64_t per_epoch = plan_ ? plan_->batches_per_epoch : 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  std::ostringstream bar;
  bar << "epoch " << epoch_ + 1;
  if (plan_) bar << "/" << plan_->epochs;
  if (per_epoch > 0) {
    constexpr int kWidth = 24;
    const auto filled = static_cast<int>(kWidth * std::min<std::int64_t>(epoch_batches_, per_epoch) / per_epoch);
    bar << " [" << std::string(static_cast<std::size_t>(filled), '#') << std::string(static_cast<std::size_t>(kWidth - filled), '-')
        << "] " << epoch_batches_ << "/" << per_epoch;
  } else {
    bar << " batch " << epoch_batches_;
  }
  char numbers[96];
  std::snprintf(numbers, sizeof numbers, " loss %.4f lr %.2e %.0f ex/s", loss, optimizer_->param_groups()[0].options().get_lr(),
                secs > 0 ? static_cast<double>(epoch_examples_) / secs : 0.0);
  bar << numbers;
  if (per_epoch > epoch_batches_ && epoch_batches_ > 0) {
    const auto left = static_cast<int>(secs / static_cast<double>(epoch_batches_) * static_cast<double>(per_epoch - epoch_batches_));
    std::snprintf(numbers, sizeof numbers, " %d:%02d left", left / 60, left % 60);
    bar << numbers;
  }
  log().progress(bar.str());
}

// CLIPLoss over the global batch: in a distributed run every rank's
// features are gathered first (see feature_gather.hpp). Undefined when the
// batch has fewer than two examples.
torch::Tensor ClipTrainer::step_loss(const torch::Tensor& image, const torch::Tensor& text) {
  ProcessGroup& g = group();
  const torch::Tensor& scale = clip_->model->logit_scale;
  if (g.size() == 1) return image.size(0) < 2 ? torch::Tensor() : clip::clip_loss(image, text, scale);
  // Gloo gathers tensors of one shape: every rank must hold as many examples.
  const std::vector<torch::Tensor> sizes = g.allgather(torch::full({1}, image.size(0), torch::kFloat));
  for (int r = 0; r < g.size(); ++r)
    if (sizes[static_cast<std::size_t>(r)].item<std::int64_t>() != image.size(0))
      throw Error("step " + std::to_string(step_ + 1) + ": rank " + std::to_string(r) + " has " +
                  std::to_string(sizes[static_cast<std::size_t>(r)].item<std::int64_t>()) + " examples in its batch, rank " +
                  std::to_string(g.rank()) + " " + std::to_string(image.size(0)) +
                  "; ranks need equal batches (an example skipped with on_error: skip?)");
  const bool with_grad = params().get_bool("gather_with_grad");
  const torch::Tensor all_image = gather_features(g, image, with_grad), all_text = gather_features(g, text, with_grad);
  if (all_image.size(0) < 2) return {};
  if (!params().get_bool("local_loss")) return clip::clip_loss(all_image, all_text, scale);  // the same on every rank
  return local_clip_loss(image, text, all_image, all_text, scale, g.rank() * image.size(0));
}

// The loss to log and to check: with local_loss each rank's differs, so it
// is the mean over the ranks, and a NaN on any rank stops every rank at the
// same step (the full loss is already the same on every rank).
double ClipTrainer::loss_value(const torch::Tensor& loss) {
  if (group().size() == 1 || !params().get_bool("local_loss")) return loss.item<double>();
  std::vector<torch::Tensor> mean{loss.detach().reshape({1}).clone()};
  group().allreduce(mean, ProcessGroup::Op::Average);
  return mean[0].item<double>();
}

void ClipTrainer::apply_step() {
  if (reducer_) {
    last_allreduce_seconds_ = reducer_->finish();
    allreduce_seconds_ += last_allreduce_seconds_;
  }
  std::unique_lock<std::shared_mutex> lock(clip_->mutex);  // no forward reads half-updated weights
  const double factor = clip::schedule_factor(params().get_string("scheduler"), step_, params().get_int("num_warmup_steps"),
                                              std::max<std::int64_t>(1, total_steps_));
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(params().get_double("learning_rate") * factor);
  if (params().get_double("max_grad_norm") > 0)
    torch::nn::utils::clip_grad_norm_(parameters_, params().get_double("max_grad_norm"));
  optimizer_->step();
  clip::clear_gradients(*optimizer_);
  {
    torch::NoGradGuard no_grad;
    clip_->model->logit_scale.clamp_(0, std::log(100.0));
  }
  ++step_;
}

void ClipTrainer::on_event(const Event& e) {
  if (e.kind != Event::Kind::EndOfEpoch || epoch_batches_ == 0) return;
  log().end_progress();
  epoch_ = e.epoch + 1;
  const double mean = epoch_loss_ / static_cast<double>(epoch_batches_);
  {
    auto m = run_metrics(*this);
    std::lock_guard<std::mutex> lock(m->mutex);
    m->train_loss[e.epoch] = mean;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  std::string comm;
  if (group().size() > 1 && epoch_batches_ > 0)
    comm = ", gradient allreduce after backward " + std::to_string(static_cast<int>(1000 * allreduce_seconds_ / static_cast<double>(epoch_batches_))) +
           " ms/step";
  if (reducer_ && params().get_bool("overlap_allreduce"))
    comm += " (last step: " + std::to_string(reducer_->started_in_backward()) + " of " + std::to_string(reducer_->buckets()) +
            " buckets started inside backward)";
  // examples/s over every rank (each saw its share of the global batch),
  // with a decimal for the slow models
  const double rate = static_cast<double>(epoch_examples_) * group().size() / secs;
  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, rate < 100 ? "%.1f" : "%.0f", rate);
  const double step_secs = secs / static_cast<double>(epoch_batches_);
  char step_text[32];
  std::snprintf(step_text, sizeof step_text, "%.2f", step_secs);
  log().info(name(), "epoch " + std::to_string(e.epoch + 1) + " done: mean loss " + std::to_string(mean) + ", " + rate_text +
                         " examples/s, " + step_text + " s/step" + comm);
  allreduce_seconds_ = 0;
  append_jsonl(*this, "metrics.jsonl",
               "{\"stage\":\"train\",\"epoch\":" + std::to_string(e.epoch) + ",\"train_loss\":" + std::to_string(mean) + "}");
  epoch_loss_ = 0;
  epoch_batches_ = 0;
  epoch_examples_ = 0;
  epoch_start_ = std::chrono::steady_clock::now();
}

}  // namespace docflow::finetune
