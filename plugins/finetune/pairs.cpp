#include "pairs.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "clip/image.hpp"
#include "docarray/document_file.hpp"
#include "docflow/error.hpp"

namespace fs = std::filesystem;

namespace docflow::finetune {

bool read_delimited_record(std::istream& in, char separator, std::vector<std::string>& fields, int& line) {
  fields.clear();
  if (in.peek() == std::char_traits<char>::eof()) return false;
  std::string field;
  bool quoted = false, was_quoted = false;
  const int first_line = line;
  for (int c; (c = in.get()) != std::char_traits<char>::eof();) {
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') field += static_cast<char>(in.get());
        else quoted = false;
      } else {
        if (c == '\n') ++line;
        field += static_cast<char>(c);
      }
      continue;
    }
    if (c == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == separator) {
      fields.push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && in.peek() == '\n') in.get();
      ++line;
      fields.push_back(std::move(field));
      return true;
    } else {
      field += static_cast<char>(c);
    }
  }
  if (quoted) throw Error("line " + std::to_string(first_line) + ": a quoted field is never closed");
  fields.push_back(std::move(field));
  ++line;
  return true;
}

namespace {

std::string detect_format(const PairSourceOptions& o) {
  if (o.format != "auto") return o.format;
  if (fs::is_directory(o.path)) return "folder";
  std::string ext = fs::path(o.path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".csv") return "csv";
  if (ext == ".tsv" || ext == ".tab") return "tsv";
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json" || ext == ".docs" || ext == ".bin") return "jsonl";
  throw Error(o.path + ": cannot tell its format from the extension '" + ext +
              "'; set format: csv, tsv, jsonl or folder");
}

docarray::Document image_at(const fs::path& path) {
  docarray::Document d;
  d.modality = "image";
  d.uri = fs::absolute(path).lexically_normal().string();
  return d;
}

// A CSV/TSV with a header row naming its columns.
std::vector<PairRecord> load_table(const fs::path& file, char separator, const PairSourceOptions& o, bool images_required) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot read " + file.string());
  int line = 1;
  std::vector<std::string> header, fields;
  try {
    if (!read_delimited_record(in, separator, header, line)) throw Error("the file is empty; it needs a header row");
  } catch (const Error& e) {
    throw Error(file.string() + ": " + e.what());
  }
  if (!header.empty() && header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0].erase(0, 3);  // a UTF-8 byte-order mark
  auto column = [&](const std::string& name, const char* key) -> std::optional<std::size_t> {
    if (name.empty()) return std::nullopt;
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) {
      std::string known;
      for (const auto& h : header) known += (known.empty() ? "" : ", ") + std::string("'") + h + "'";
      throw Error(file.string() + ":1: no column '" + name + "' (" + key + "); the header has " + known);
    }
    return static_cast<std::size_t>(it - header.begin());
  };
  const auto image_col = column(o.image_column, "image_column"), caption_col = column(o.caption_column, "caption_column"),
             label_col = column(o.label_column, "label_column");
  std::vector<PairRecord> out;
  const fs::path base = file.parent_path();
  for (;;) {
    const int at = line;
    try {
      if (!read_delimited_record(in, separator, fields, line)) break;
    } catch (const Error& e) {
      throw Error(file.string() + ": " + e.what());
    }
    if (fields.size() == 1 && fields[0].empty()) continue;  // a blank line
    const std::string where = file.string() + ":" + std::to_string(at);
    if (fields.size() != header.size())
      throw Error(where + ": " + std::to_string(fields.size()) + " fields, the header has " + std::to_string(header.size()));
    PairRecord r;
    r.where = where;
    r.caption = fields[*caption_col];
    if (r.caption.empty()) throw Error(where + ": the caption ('" + o.caption_column + "') is empty");
    if (images_required) {
      const std::string& image = fields[*image_col];
      if (image.empty()) throw Error(where + ": the image path ('" + o.image_column + "') is empty");
      r.image = image_at(fs::path(image).is_absolute() ? fs::path(image) : base / image);
    }
    if (label_col) r.label = fields[*label_col];
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<PairRecord> load_jsonl(const fs::path& file) {
  docarray::DocumentArray docs = docarray::load_documents(file.string());
  std::vector<PairRecord> out;
  const fs::path base = file.parent_path();
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const docarray::Document& d = docs[i];
    const std::string where = file.string() + ": document " + std::to_string(i + 1) + " ('" + d.id + "')";
    const docarray::Document *image = nullptr, *text = nullptr;
    for (const auto& c : d.chunks) {
      if (c.modality == "image" && !image) image = &c;
      if (c.modality == "text" && !text) text = &c;
    }
    if (!image || !text)
      throw Error(where + ": a training example needs an image chunk and a text chunk (chunks with modality image and text)");
    if (text->text.empty()) throw Error(where + ": its text chunk has no text");
    if (image->uri.empty() && image->blob.empty() && !image->tensor.defined())
      throw Error(where + ": its image chunk has no uri, blob or tensor");
    PairRecord r;
    r.where = where;
    r.image = *image;
    if (!r.image.uri.empty() && r.image.uri.find("://") == std::string::npos && !fs::path(r.image.uri).is_absolute())
      r.image.uri = (base / r.image.uri).lexically_normal().string();
    r.caption = text->text;
    if (const auto* label = d.tags.find("label")) r.label = label->is_string() ? label->as_string() : label->dump();
    out.push_back(std::move(r));
  }
  return out;
}

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<PairRecord> load_folder(const fs::path& dir, const PairSourceOptions& o) {
  if (!o.captions.empty()) {
    // The captions file names the images, relative to itself (the folder).
    const fs::path file = dir / o.captions;
    const std::string ext = file.extension().string();
    return load_table(file, ext == ".tsv" || ext == ".tab" || ext == ".txt" ? '\t' : ',', o, true);
  }
  std::vector<fs::path> images;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && is_image_file(e.path())) images.push_back(e.path());
  std::sort(images.begin(), images.end());  // the same order on every file system
  std::vector<PairRecord> out;
  for (const auto& image : images) {
    fs::path caption_file = image;
    caption_file.replace_extension(".txt");
    std::ifstream in(caption_file);
    if (!in)
      throw Error(image.string() + ": no caption (" + caption_file.filename().string() +
                  " beside it); or name a captions file with `captions:`");
    std::string caption((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!caption.empty() && std::isspace(static_cast<unsigned char>(caption.back()))) caption.pop_back();
    if (caption.empty()) throw Error(caption_file.string() + ": the caption is empty");
    PairRecord r;
    r.where = caption_file.string();
    r.image = image_at(image);
    r.caption = std::move(caption);
    if (!o.label_column.empty()) r.label = image.parent_path().filename().string();  // folder-per-class layouts
    out.push_back(std::move(r));
  }
  if (out.empty()) throw Error(dir.string() + ": no .jpg, .jpeg or .png images in this folder");
  return out;
}

}  // namespace

PairSourceOptions pair_source_options(const Params& params, const std::string& path_param) {
  PairSourceOptions o;
  o.path = params.get_string(path_param);
  o.format = params.get_string("format");
  o.image_column = params.get_string("image_column");
  o.caption_column = params.get_string("caption_column");
  o.label_column = params.get_string("label_column");
  o.captions = params.get_string("captions");
  return o;
}

at::Tensor pair_image_tensor(const PairRecord& r, int size) {
  const docarray::Document& image = r.image;
  if (image.tensor.defined() && image.blob.empty() && image.uri.empty()) return image.tensor;
  try {
    return clip::preprocess(clip::load_document_image(image.blob, image.uri, r.where, size), size);
  } catch (const std::exception& e) {
    throw Error(r.where + ": " + e.what());
  }
}

std::vector<PairRecord> load_pairs(const PairSourceOptions& o) {
  if (!fs::exists(o.path)) throw Error(o.path + ": no such file or folder");
  const std::string format = detect_format(o);
  if (format == "csv") return load_table(o.path, ',', o, true);
  if (format == "tsv") return load_table(o.path, '\t', o, true);
  if (format == "jsonl") return load_jsonl(o.path);
  if (format == "folder") {
    if (!fs::is_directory(o.path)) throw Error(o.path + ": format folder needs a folder");
    return load_folder(o.path, o);
  }
  throw Error("unknown format '" + format + "' (csv, tsv, jsonl, folder)");
}

}  // namespace docflow::finetune
