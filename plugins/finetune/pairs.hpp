#pragma once
// Image-caption pairs from the files users have: a CSV or TSV with a caption
// and an image-path column chosen by name (paths relative to the file), JSON
// Lines documents with an image chunk and a text chunk, or a folder of images
// with a captions file (or a NAME.txt beside each image). Every record keeps
// where it came from (file:line), so that a broken example is named.
#include <optional>
#include <string>
#include <vector>

#include "docarray/document.hpp"
#include "docflow/params.hpp"

namespace docflow::finetune {

struct PairRecord {
  docarray::Document image;  // modality image: uri (absolute), blob or tensor
  std::string caption;
  std::optional<std::string> label;  // from label_column (CSV/TSV/folder) or tags.label (JSON Lines)
  std::string where;                 // "file:line", for messages
};

struct PairSourceOptions {
  std::string path;
  std::string format = "auto";  // auto, csv, tsv, jsonl, folder
  std::string image_column = "image", caption_column = "caption", label_column;
  std::string captions;  // folder: a CSV/TSV captions file inside it; "" = NAME.txt beside each image
};

// The options from an executor's parameters (format, image_column,
// caption_column, label_column, captions), the path from `path_param`.
PairSourceOptions pair_source_options(const Params& params, const std::string& path_param);

// The record's image as the model's input at `size`: its tensor when it
// came as one (JSON Lines), else its blob or file decoded and preprocessed.
// Throws docflow::Error naming the record.
at::Tensor pair_image_tensor(const PairRecord& record, int size);

// Reads every record (paths and captions only: images are decoded later).
// Throws docflow::Error naming the file, line and column at fault.
std::vector<PairRecord> load_pairs(const PairSourceOptions& options);

// RFC 4180 fields of one record (quotes, doubled quotes, separators and
// newlines inside quotes); `line` advances past embedded newlines.
// Returns false at the end of the input.
bool read_delimited_record(std::istream& in, char separator, std::vector<std::string>& fields, int& line);

}  // namespace docflow::finetune
