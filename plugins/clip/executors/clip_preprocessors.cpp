#include "clip_preprocessors.hpp"
#include "selection.hpp"

#include <ATen/ops/tensor.h>

#include <filesystem>

#include "clip/error.hpp"
#include "clip/image.hpp"
#include "docflow/error.hpp"

namespace docflow::clip_plugin {
namespace {

bool contains_any(const docarray::Document& d, const std::set<std::string>& ids) {
  if (ids.count(d.id)) return true;
  for (const auto& c : d.chunks)
    if (contains_any(c, ids)) return true;
  return false;
}

// A PNG of `image` whose longer side is at most `size` (never enlarged).
std::string thumbnail_png(const clip::Image& image, int size) {
  const int longer = std::max(image.width, image.height);
  if (longer <= size) return clip::encode_png(image);
  const int w = std::max(1, image.width * size / longer), h = std::max(1, image.height * size / longer);
  return clip::encode_png(clip::resize(image, w, h));
}

}  // namespace

void drop_documents_containing(docarray::DocumentArray& docs, const std::set<std::string>& ids) {
  if (ids.empty()) return;
  docarray::DocumentArray kept;
  for (auto& d : docs.raw())
    if (!contains_any(d, ids)) kept.append(std::move(d));
  docs = std::move(kept);
}

ClipImagePreprocessor::ClipImagePreprocessor(ExecutorContext context)
    : Executor(std::move(context)),
      rng_(static_cast<std::uint64_t>(params().get_int("seed")) + static_cast<std::uint64_t>(this->context().replica_id)) {
  on("*", [this](Request& r) { preprocess(r); });
}

void ClipImagePreprocessor::preprocess(Request& request) {
  const int size = static_cast<int>(params().get_int("image_size"));
  const bool training = params().get_string("mode") == "training";
  const bool skip = params().get_string("on_error") == "skip";
  const int thumbnail = static_cast<int>(params().get_int("thumbnail"));
  std::set<std::string> failed;
  for (docarray::Document* d : selected_documents(request, params())) {
    if (d->tensor.defined() && d->blob.empty() && d->uri.empty()) continue;  // already a tensor
    try {
      const clip::Image image = clip::load_document_image(d->blob, d->uri, d->id, size);
      d->tensor = training ? clip::preprocess_random_crop(image, size, rng_) : clip::preprocess(image, size);
      if (thumbnail > 0) {
        // From the image already decoded: what a search page shows, small
        // enough to keep in an index and to send with every match.
        d->blob = thumbnail_png(image, thumbnail);
        d->mime_type = "image/png";
      }
    } catch (const clip::Error& e) {
      if (!skip) throw Error(e.what());
      log().warning(name(), std::string("skipping a document: ") + e.what());
      failed.insert(d->id);
    }
  }
  skipped_ += failed.size();
  drop_documents_containing(request.docs, failed);
}

void ClipImagePreprocessor::close() {
  if (skipped_) log().warning(name(), std::to_string(skipped_) + " document(s) skipped for unreadable images");
}

ClipTokenizer::ClipTokenizer(ExecutorContext context) : Executor(std::move(context)) {
  on("*", [this](Request& r) { tokenize(r); });
}

void ClipTokenizer::open() {
  try {
    tokenizer_ = std::make_unique<clip::Tokenizer>(clip::Tokenizer::load(params().get_string("vocab")));
  } catch (const clip::Error& e) {
    throw Error(e.what());
  }
}

void ClipTokenizer::tokenize(Request& request) {
  const auto context = static_cast<std::size_t>(params().get_int("context_length"));
  const bool truncate = params().get_bool("truncate");
  for (docarray::Document* d : selected_documents(request, params())) {
    try {
      auto ids = tokenizer_->tokenize(d->text, context, truncate);
      d->tensor = at::tensor(ids, at::kLong);
    } catch (const clip::Error& e) {
      throw Error("document " + d->id + ": " + e.what());
    }
  }
}

}  // namespace docflow::clip_plugin
