#pragma once
// Image decoding and CLIP's preprocessing: JPEG (libjpeg-turbo, scaled
// decoding for large images) and PNG (libpng); grey, palette, RGBA and CMYK
// become RGB. Resizing is PIL's antialiased bicubic with PIL's own 8-bit
// fixed-point arithmetic, so results match torchvision + PIL within a unit.
// ATen's Tensor alone, not <torch/torch.h>: every file that includes this
// would otherwise pay that header's 8-9 s of template instantiation (GCC 12).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace clip {

struct Image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // height * width * 3, row-major
};

// Decodes PNG or JPEG bytes (detected by content). `name` is used in errors.
// `min_short_side` > 0 lets JPEG decode at 1/2, 1/4 or 1/8 scale while the
// shorter side stays at least twice that size. Throws clip::Error naming the
// file for corrupt, truncated or unsupported data.
Image decode_image(const std::string& bytes, const std::string& name, int min_short_side = 0);
Image load_image(const std::string& path, int min_short_side = 0);
// A document's image: its blob (named by `uri` or `id` in errors) or the file at `uri`.
Image load_document_image(const std::string& blob, const std::string& uri, const std::string& id, int min_short_side = 0);

// PNG bytes of an RGB image (for reports and for generated test data).
std::string encode_png(const Image& image);

Image resize(const Image& in, int width, int height);     // PIL BICUBIC, antialiased
Image resize_shorter_side(const Image& in, int size);     // torchvision Resize(size)
Image crop(const Image& in, int left, int top, int width, int height);
Image center_crop(const Image& in, int size);             // torchvision CenterCrop(size)

// [3, H, W] float: scaled to [0, 1], normalised with CLIP's mean and std.
at::Tensor to_normalized_tensor(const Image& in);
// The inverse, for showing a preprocessed image (reports).
Image from_normalized_tensor(const at::Tensor& tensor);
// CLIP's inference transform: Resize(size), CenterCrop(size), normalise.
at::Tensor preprocess(const Image& in, int size);
// Training: a random resized crop covering `min_scale`..1 of the area (aspect
// 3/4..4/3, as torchvision's RandomResizedCrop), then normalise.
at::Tensor preprocess_random_crop(const Image& in, int size, std::mt19937_64& rng, double min_scale = 0.9);

}  // namespace clip
