#include "fashion_mnist.hpp"

#include <filesystem>

#include "clip/error.hpp"
#include "clip/image.hpp"
#include "clip/tokenizer.hpp"
#include "docflow/error.hpp"

namespace docflow::finetune {
namespace {

std::string read_gz(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw Error("Fashion-MNIST file not found: " + path + " (apt-get install dataset-fashion-mnist)");
  try {
    return clip::read_gzip_file(path);
  } catch (const clip::Error& e) {
    throw Error(e.what());
  }
}

std::uint32_t be32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

const std::vector<std::vector<std::string>> kSynonyms = {
    {"t-shirt", "top", "tee"},           {"trousers", "pants", "slacks"},
    {"pullover", "sweater", "jumper"},   {"dress", "frock", "gown"},
    {"coat", "jacket", "overcoat"},      {"sandal", "summer sandals", "open shoe"},
    {"shirt", "button-down shirt", "blouse"}, {"sneaker", "trainers", "running shoe"},
    {"bag", "handbag", "purse"},         {"ankle boot", "boot", "short boot"}};

const std::vector<std::string> kTrainingTemplates = {"a photo of a {}", "{}", "a grey {}", "a {} product photo",
                                                     "a black and white picture of a {}", "a small image of a {}"};
const std::vector<std::string> kEvaluationTemplates = {"an item of clothing: a {}", "this is a {}"};

std::string fill(const std::string& tpl, const std::string& word) {
  std::string out = tpl;
  out.replace(out.find("{}"), 2, word);
  return out;
}

}  // namespace

FashionMnist load_fashion_mnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test") throw Error("split must be train or test, got '" + split + "'");
  const std::string prefix = (std::filesystem::path(dir) / (split == "train" ? "train" : "t10k")).string();
  const std::string images_path = prefix + "-images-idx3-ubyte.gz", labels_path = prefix + "-labels-idx1-ubyte.gz";
  const std::string images = read_gz(images_path), labels = read_gz(labels_path);
  if (images.size() < 16 || be32(images, 0) != 0x803) throw Error(images_path + ": not an IDX3 image file");
  if (labels.size() < 8 || be32(labels, 0) != 0x801) throw Error(labels_path + ": not an IDX1 label file");
  FashionMnist d;
  d.count = be32(images, 4);
  d.rows = be32(images, 8);
  d.cols = be32(images, 12);
  if (be32(labels, 4) != static_cast<std::uint32_t>(d.count))
    throw Error(labels_path + ": " + std::to_string(be32(labels, 4)) + " labels for " + std::to_string(d.count) + " images");
  const std::size_t need = static_cast<std::size_t>(d.count * d.rows * d.cols);
  if (images.size() != 16 + need) throw Error(images_path + ": truncated (" + std::to_string(images.size()) + " bytes)");
  if (labels.size() != 8 + static_cast<std::size_t>(d.count)) throw Error(labels_path + ": truncated");
  d.pixels.assign(images.begin() + 16, images.end());
  d.labels.assign(labels.begin() + 8, labels.end());
  for (auto l : d.labels)
    if (l > 9) throw Error(labels_path + ": label " + std::to_string(l) + " is not a Fashion-MNIST class");
  return d;
}

const std::vector<std::string>& class_names() {
  static const std::vector<std::string> kNames = {"t-shirt", "trousers", "pullover", "dress", "coat",
                                                  "sandal",  "shirt",    "sneaker",  "bag",   "ankle boot"};
  return kNames;
}

std::string training_caption(int label, std::mt19937_64& rng) {
  const auto& words = kSynonyms.at(static_cast<std::size_t>(label));
  std::uniform_int_distribution<std::size_t> w(0, words.size() - 1), t(0, kTrainingTemplates.size() - 1);
  return fill(kTrainingTemplates[t(rng)], words[w(rng)]);
}

std::vector<std::string> evaluation_queries(int label) {
  std::vector<std::string> out;
  for (const auto& tpl : kEvaluationTemplates) out.push_back(fill(tpl, class_names().at(static_cast<std::size_t>(label))));
  return out;
}

clip::Image fashion_image(const FashionMnist& data, std::int64_t i) {
  clip::Image im;
  im.width = static_cast<int>(data.cols);
  im.height = static_cast<int>(data.rows);
  im.rgb.resize(static_cast<std::size_t>(im.width) * im.height * 3);
  const std::uint8_t* src = data.pixels.data() + i * data.rows * data.cols;
  for (std::size_t p = 0; p < static_cast<std::size_t>(im.width) * im.height; ++p)
    im.rgb[3 * p] = im.rgb[3 * p + 1] = im.rgb[3 * p + 2] = src[p];
  return im;
}

at::Tensor image_tensor(const FashionMnist& data, std::int64_t i, int size) {
  return clip::preprocess(fashion_image(data, i), size);
}

}  // namespace docflow::finetune
