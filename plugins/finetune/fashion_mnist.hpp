#pragma once
// Fashion-MNIST in its IDX files (gzip-compressed, as Debian's
// dataset-fashion-mnist ships them), and the captions its ten classes get:
// training captions from several templates and synonyms, evaluation queries
// from templates that training never sees.
#include "clip/image.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace docflow::finetune {

struct FashionMnist {
  std::int64_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * cols, grey
  std::vector<std::uint8_t> labels;  // count, 0..9
};

// DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; `split` is "train" or
// "test". Throws docflow::Error naming the file for missing or bad data.
FashionMnist load_fashion_mnist(const std::string& dir, const std::string& split);

// The class names, 0..9.
const std::vector<std::string>& class_names();
// A training caption for `label`, drawn from the training templates and synonyms.
std::string training_caption(int label, std::mt19937_64& rng);
// The evaluation queries for `label` (held-out templates, canonical names).
std::vector<std::string> evaluation_queries(int label);

// Image `i` as it is stored (28 x 28 grey, as RGB).
clip::Image fashion_image(const FashionMnist& data, std::int64_t i);
// Image `i` as a CLIP-normalised float tensor [3, size, size] (grey -> RGB,
// PIL-style bicubic resize).
at::Tensor image_tensor(const FashionMnist& data, std::int64_t i, int size);

}  // namespace docflow::finetune
