// The `clip` plugin: CLIP's preprocessing and encoders as executors.
#include <string>

#include "clip/config.hpp"
#include "clip_encoders.hpp"
#include "clip_preprocessors.hpp"
#include "docflow/plugin.hpp"

namespace {

using docflow::plugin::at_least;
using docflow::plugin::one_of;
using docflow::plugin::param;
namespace cp = docflow::clip_plugin;

// Computed once when the plugin loads, for `flow plugins describe`, the way
// Finetuner's describe_models() lists what can be fine-tuned.
const std::string kPresets = clip::describe_presets() +
                             "\n`model` also takes a folder with model.safetensors + config.json (Hugging Face), or an "
                             "OpenAI TorchScript or state-dict file.";

#define CLIP_SELECTION(MODALITY)                                                                 \
  param("traversal_path", "string", "\"@r\"", "which documents: @r, @c, @r,c, ..."),             \
      param("modality", "string", "\"" MODALITY "\"", "only documents of this modality (\"\": all; a document without one is text if it has text, else an image)")

// The encoders' parameters; they differ only in the modality they pick.
#define CLIP_ENCODER_PARAMS(MODALITY)                                                                             \
  param("model", "string", "\"small\"", "a preset name, or a folder or file of weights"),                        \
      param("shared_as", "string", "\"clip\"", "the name under which encoders and trainer share one model"),     \
      param("device", "string", "\"cpu\"", "cpu, cuda or cuda:N"),                                              \
      at_least(param("batch_size", "int", "64", "documents per forward pass"), 1),                               \
      param("normalize", "bool", "false", "L2-normalise the embeddings"),                                        \
      one_of(param("mode", "string", "\"inference\"",                                                           \
                   "inference (no autograd) or training (embeddings keep their graph)"),                         \
             "inference|training"),                                                                               \
      CLIP_SELECTION(MODALITY)

const docflow_param_schema kEncoderParams[] = {CLIP_ENCODER_PARAMS("image")};
const docflow_param_schema kTextEncoderParams[] = {CLIP_ENCODER_PARAMS("text")};

const docflow_param_schema kImageParams[] = {
    at_least(param("image_size", "int", "224", "the model's input size in pixels"), 1),
    one_of(param("mode", "string", "\"inference\"", "inference (resize + center crop) or training (random resized crop)"),
           "inference|training"),
    param("seed", "int", "0", "the random crop's seed"),
    at_least(param("thumbnail", "int", "0", "N > 0: replace the blob by a PNG of the image, longer side at most N "
                                            "pixels (for an index and a search page)"), 0),
    one_of(param("on_error", "string", "\"fail\"", "an unreadable image fails the run, or skips its document"),
           "fail|skip"),
    CLIP_SELECTION("image"),
};

const docflow_param_schema kTokenizerParams[] = {
    param("vocab", "string", nullptr, "bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json and merges.txt"),
    at_least(param("context_length", "int", "77", "tokens per text, padded with 0"), 2),
    param("truncate", "bool", "true", "cut long texts (keeping the end token last) instead of failing"),
    CLIP_SELECTION("text"),
};

const docflow_executor_entry kExecutors[] = {
    docflow::plugin::executor<cp::ClipImagePreprocessor>("ClipImagePreprocessor",
                                                          "image uri or blob -> tensor [3, S, S], CLIP-normalised",
                                                          kImageParams),
    docflow::plugin::executor<cp::ClipTokenizer>("ClipTokenizer", "text -> tensor of CLIP token ids", kTokenizerParams),
    docflow::plugin::executor<cp::ClipImageEncoder>("ClipImageEncoder", "image tensor -> CLIP embedding", kEncoderParams,
                                                     kPresets.c_str()),
    docflow::plugin::executor<cp::ClipTextEncoder>("ClipTextEncoder", "token ids -> CLIP embedding", kTextEncoderParams,
                                                    kPresets.c_str()),
};

}  // namespace

DOCFLOW_PLUGIN("clip", "0.1.0", "CLIP image and text encoders", kExecutors)
