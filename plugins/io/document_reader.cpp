#include <fstream>
#include "document_reader.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>

#include "docflow/error.hpp"

namespace fs = std::filesystem;

namespace docflow::io {
namespace {

bool has_wildcard(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

std::string mime_for(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".bmp") return "image/bmp";
  if (ext == ".webp") return "image/webp";
  return "application/octet-stream";
}

// Files matching a glob whose wildcards are in the last path component.
std::vector<std::string> expand_glob(const std::string& pattern) {
  fs::path p(pattern);
  fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (has_wildcard(dir.string()))
    throw Error("glob '" + pattern + "': wildcards are only supported in the file name, not in folders");
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && ::fnmatch(p.filename().c_str(), e.path().filename().c_str(), 0) == 0)
      out.push_back(e.path().string());
  if (ec) throw Error("glob '" + pattern + "': cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

DocumentReader::DocumentReader(ExecutorContext context)
    : Source(std::move(context)),
      path_(params().get_string("path")),
      endpoint_(params().get_string("endpoint")),
      batch_size_(static_cast<std::size_t>(params().get_int("batch_size"))),
      epochs_(static_cast<int>(params().get_int("epochs"))),
      shuffle_(params().get_bool("shuffle")),
      limit_(params().get_int("limit")),
      rng_(static_cast<std::uint64_t>(params().get_int("seed"))) {}

void DocumentReader::open() {
  is_glob_ = has_wildcard(path_);
  if (is_glob_) {
    image_files_ = expand_glob(path_);
    if (image_files_.empty()) throw Error("no file matches '" + path_ + "'");
  } else if (!fs::exists(path_)) {
    throw Error("document file not found: " + path_ + " (relative paths start from " + fs::current_path().string() + ")");
  }
  if (shuffle_ && !is_glob_) {
    // Shuffling needs every document at hand; without shuffle we stream.
    docarray::DocumentFileReader r(path_);
    docarray::Document d{std::string()};
    while (r.next(d)) all_.push_back(std::move(d));
  }
  log().info(name(), "reading " + path_ + (is_glob_ ? " (" + std::to_string(image_files_.size()) + " files)" : "") +
                         ", batch " + std::to_string(batch_size_) + ", " + std::to_string(epochs_) + " epoch(s)" +
                         (shuffle_ ? ", shuffled" : ""));
  start_epoch();
}

void DocumentReader::start_epoch() {
  position_ = 0;
  emitted_in_epoch_ = 0;
  epoch_done_ = false;
  std::size_t n = is_glob_ ? image_files_.size() : all_.size();
  order_.resize(n);
  for (std::size_t i = 0; i < n; ++i) order_[i] = i;
  if (shuffle_) std::shuffle(order_.begin(), order_.end(), rng_);
  if (!is_glob_ && !shuffle_) reader_ = std::make_unique<docarray::DocumentFileReader>(path_);
}

bool DocumentReader::next_document(docarray::Document& doc) {
  if (limit_ >= 0 && emitted_in_epoch_ >= limit_) return false;
  if (is_glob_) {
    if (position_ >= order_.size()) return false;
    const std::string& file = image_files_[order_[position_++]];
    doc = docarray::Document();
    doc.uri = file;
    doc.modality = "image";
    doc.mime_type = mime_for(file);
  } else if (shuffle_) {
    if (position_ >= order_.size()) return false;
    doc = all_[order_[position_++]];
  } else {
    if (!reader_->next(doc)) return false;
  }
  ++emitted_in_epoch_;
  return true;
}

std::optional<Source::Item> DocumentReader::next() {
  if (finished_) return std::nullopt;
  if (epoch_done_) {
    // The end-of-epoch marker has been sent: begin the next epoch or stop.
    if (++epoch_ >= epochs_) {
      finished_ = true;
      return std::nullopt;
    }
    start_epoch();
  }
  Item item;
  item.epoch = epoch_;
  docarray::Document d{std::string()};
  while (item.docs.size() < batch_size_ && next_document(d)) item.docs.append(std::move(d));
  if (item.docs.empty()) {
    epoch_done_ = true;
    item.kind = Item::Kind::EndOfEpoch;
  }
  return item;
}

void DocumentReader::save_state(const std::filesystem::path& dir) {
  std::ofstream out(dir / "position");
  out << epoch_ << "\n" << rng_ << "\n";
  if (!out) throw Error("cannot write " + (dir / "position").string());
}

void DocumentReader::load_state(const std::filesystem::path& dir) {
  std::ifstream in(dir / "position");
  if (!(in >> epoch_ >> rng_)) throw Error("no reader position in " + (dir / "position").string());
  epoch_done_ = true;  // next() begins the epoch after the checkpoint's, shuffled by the restored generator
  finished_ = false;
}

}  // namespace docflow::io
