// The `finetune` plugin: the executors that compose the CLIP fine-tuning job.
#include "docflow/plugin.hpp"
#include "executors.hpp"

namespace {

using docflow::plugin::executor;
using docflow::plugin::at_least;
using docflow::plugin::one_of;
using docflow::plugin::param;
using docflow::plugin::ranged;
using docflow::plugin::single_instance;
namespace ft = docflow::finetune;

#define FASHION_PATH param("path", "string", "\"/usr/share/datasets/fashion-mnist\"", "the folder of the IDX .gz files")

const docflow_param_schema kReaderParams[] = {
    FASHION_PATH,
    one_of(param("split", "string", "\"train\"", "train or test"), "train|test"),
    param("limit", "int", "-1", "examples at most (-1: all)"),
    at_least(param("batch_size", "int", "128", "examples per training step over all ranks (each rank reads batch_size / world size)"), 2),
    at_least(param("epochs", "int", "1", "passes over the data"), 1),
    param("shuffle", "bool", "true", "shuffle every epoch"),
    param("seed", "int", "0", "shuffle and caption seed"),
    at_least(param("image_size", "int", "32", "the model's input size"), 8),
    one_of(param("drop_last", "string", "\"auto\"",
                 "drop an incomplete last batch: auto drops it for /train (as open_clip does) and keeps every example "
                 "otherwise; a distributed run always drops it"),
           "auto|true|false"),
    param("endpoint", "string", "\"/train\"", "the endpoint requests go to"),
    one_of(param("documents", "string", "\"pairs\"",
                 "pairs (an image chunk and a caption chunk, for training) or images (one image document each, "
                 "with its PNG as the blob, for an index)"),
           "pairs|images"),
};

#define PAIR_SOURCE(PATH_DESCRIPTION)                                                                        \
  param("format", "string", "\"auto\"", "auto (from the extension), csv, tsv, jsonl or folder"),                   \
      param("image_column", "string", "\"image\"", "CSV/TSV: the column of image paths (relative to the file)"),   \
      param("caption_column", "string", "\"caption\"", "CSV/TSV: the column of captions"),                         \
      param("label_column", "string", "\"\"", "CSV/TSV: a column kept as tags.label (folder: any value takes "     \
                                              "the image's sub-folder)"),                                          \
      param("captions", "string", "\"\"", "folder: a CSV/TSV captions file in it (\"\": NAME.txt beside each image)")

const docflow_param_schema kPairReaderParams[] = {
    param("path", "string", nullptr, "a .csv, .tsv or .jsonl file, or a folder of images"),
    PAIR_SOURCE(),
    param("limit", "int", "-1", "examples at most (-1: all)"),
    at_least(param("batch_size", "int", "32", "examples per training step over all ranks (each rank reads batch_size / world size)"), 2),
    at_least(param("epochs", "int", "1", "passes over the data"), 1),
    param("shuffle", "bool", "true", "shuffle every epoch"),
    param("seed", "int", "0", "shuffle seed"),
    at_least(param("image_size", "int", "224", "decode and preprocess images to this size (0: leave them to a "
                                                "ClipImagePreprocessor)"), 0),
    at_least(param("read_ahead", "int", "2", "batches decoded ahead on worker threads"), 0),
    one_of(param("drop_last", "string", "\"auto\"",
                 "drop an incomplete last batch: auto drops it for /train (as open_clip does) and keeps every example "
                 "otherwise; a distributed run always drops it"),
           "auto|true|false"),
    one_of(param("on_error", "string", "\"fail\"", "an unreadable image fails the run, or skips its example"), "fail|skip"),
    param("endpoint", "string", "\"/train\"", "the endpoint requests go to"),
};

const docflow_param_schema kTrainerParams[] = {
    param("shared_as", "string", "\"clip\"", "the shared model the encoders use"),
    one_of(param("loss", "string", "\"CLIPLoss\"", "the loss"), "CLIPLoss"),
    one_of(param("optimizer", "string", "\"adamw\"", "adamw or adam"), "adamw|adam"),
    ranged(param("learning_rate", "double", "1e-5", "peak learning rate"), 0, 10),
    param("beta1", "double", "0.9", "Adam beta1"),
    param("beta2", "double", "0.98", "Adam beta2"),
    param("eps", "double", "1e-6", "Adam epsilon"),
    at_least(param("weight_decay", "double", "0.1", "AdamW decay (never on biases, norms, logit_scale)"), 0),
    one_of(param("scheduler", "string", "\"constant\"", "learning-rate schedule, stepped per batch"),
           "constant|constant_with_warmup|linear|cosine"),
    at_least(param("num_warmup_steps", "int", "0", "linear warm-up steps"), 0),
    param("total_steps", "int", "0", "schedule length (0: from the reader's plan)"),
    at_least(param("max_grad_norm", "double", "0", "gradient clipping by norm (0: off)"), 0),
    at_least(param("accumulation_steps", "int", "1", "batches per optimizer step"), 1),
    one_of(param("freeze", "string", "\"none\"", "freeze a tower"), "none|vision|text"),
    at_least(param("trainable_blocks", "int", "-1", "train only the last N blocks of each tower (-1: all)"), -1),
    param("seed", "int", "0", "random seed"),
    at_least(param("log_every", "int", "10", "log a progress line every N steps"), 1),
    param("gather_with_grad", "bool", "true",
          "distributed: CLIPLoss sees every rank's features with their gradients (exactly one process's training); "
          "false: only this rank's rows carry a gradient"),
    param("local_loss", "bool", "false",
          "distributed: each rank's loss covers only its own rows against all features (open_clip's local_loss; "
          "less compute per rank, the same gradients)"),
    param("overlap_allreduce", "bool", "false",
          "distributed: each bucket of gradients starts its allreduce as soon as backward has filled it, as "
          "DistributedDataParallel does (for ranks with cores to spare: on ranks that use every core it measured "
          "slower); false: all of them after backward"),
};

const docflow_param_schema kEvaluatorParams[] = {
    param("shared_as", "string", "\"clip\"", "the shared model"),
    param("data", "string", "\"\"", "held-out pairs (.csv, .tsv, .jsonl or a folder); \"\": Fashion-MNIST at path"),
    PAIR_SOURCE(),
    FASHION_PATH,
    one_of(param("split", "string", "\"test\"", "Fashion-MNIST: the images to retrieve"), "train|test"),
    param("limit", "int", "1000", "index images (Fashion-MNIST) or pairs (data) at most (-1: all)"),
    at_least(param("k", "int", "20", "the k of the *_at_k metrics"), 1),
    at_least(param("limit_matches", "int", "20", "matches per query"), 1),
    one_of(param("distance", "string", "\"cosine\"", "match metric"), "cosine|euclidean|sqeuclidean|dot"),
    at_least(param("image_size", "int", "32", "the model's input size"), 8),
    param("vocab", "string", nullptr, "CLIP's bpe_simple_vocab_16e6.txt.gz"),
    at_least(param("context_length", "int", "77", "tokens per query"), 2),
    at_least(param("batch_size", "int", "256", "documents per forward pass"), 1),
    at_least(param("gather_examples", "int", "0", "keep the top 5 images of this many queries for the report"), 0),
};

const docflow_param_schema kCheckpointerParams[] = {
    param("shared_as", "string", "\"clip\"", "the shared model"),
    param("monitor", "string", "\"precision_at_k\"", "a metric of the evaluator, or train_loss"),
    one_of(param("mode", "string", "\"auto\"", "max, min, or auto (min for losses)"), "auto|min|max"),
    param("vocab", "string", "\"\"", "tokenizer vocabulary to save beside the model"),
};

const docflow_param_schema kEarlyStoppingParams[] = {
    param("monitor", "string", "\"precision_at_k\"", "a metric of the evaluator, or train_loss"),
    one_of(param("mode", "string", "\"auto\"", "max, min, or auto (min for losses)"), "auto|min|max"),
    at_least(param("patience", "int", "2", "epochs without improvement before stopping"), 1),
    at_least(param("min_delta", "double", "0", "the smallest change that counts as an improvement"), 0),
    param("baseline", "any", "null", "a value to beat, or null"),
};

const docflow_param_schema kWiseFtParams[] = {
    param("shared_as", "string", "\"clip\"", "the shared model"),
    ranged(param("alpha", "double", "0.5", "weight of the fine-tuned model (0: the starting one, 1: fine-tuned only)"), 0, 1),
};

// The trainer steps one optimizer, the evaluator and the checkpointer keep
// the run's metrics and best value, WiSEFT the starting weights,
// EarlyStopping its counter: state across requests, so no replicas.
const docflow_executor_entry kExecutors[] = {
    executor<ft::FashionMnistReader>("FashionMnistReader", "Fashion-MNIST as image/caption pairs, or as images to index", kReaderParams),
    executor<ft::PairReader>("PairReader", "image-caption pairs from CSV/TSV, JSON Lines or a folder",
                             kPairReaderParams),
    single_instance(executor<ft::ClipTrainer>("ClipTrainer", "CLIPLoss, backward, optimizer step", kTrainerParams)),
    single_instance(executor<ft::RetrievalEvaluator>(
        "RetrievalEvaluator", "text-to-image retrieval metrics before training and every epoch", kEvaluatorParams)),
    single_instance(executor<ft::Checkpointer>("Checkpointer", "keeps the best model as a Hugging Face artifact",
                                               kCheckpointerParams)),
    single_instance(executor<ft::WiSEFT>("WiSEFT", "blends fine-tuned and starting weights at the end (WiSE-FT)",
                                         kWiseFtParams)),
    single_instance(executor<ft::EarlyStopping>("EarlyStopping", "ends the run when a metric stops improving",
                                                kEarlyStoppingParams)),
};

}  // namespace

DOCFLOW_PLUGIN("finetune", "0.1.0", "fine-tuning CLIP: data, trainer, evaluator, checkpoints", kExecutors)
