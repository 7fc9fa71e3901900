#include "clip/image.hpp"

#include <ATen/ops/empty.h>

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <optional>
#include <fstream>

#include "clip/error.hpp"
#include "docarray/limits.hpp"
#include "vector_math.hpp"

namespace clip {
namespace {

// Decompression bombs: a header declares the size, a few bytes fill it. The
// declared pixels are checked (in 64 bits) before any buffer is allocated.
void check_pixels(std::uint64_t width, std::uint64_t height, const std::string& name) {
  if (width == 0 || height == 0) throw Error(name + ": the image header declares a size of 0 pixels");
  if (width * height > docarray::limits().image_pixels || width > 1u << 30 || height > 1u << 30)
    throw Error(name + ": the image header declares " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, more than " + docarray::limit_hint("image_pixels"));
}

// --- PNG ----------------------------------------------------------------------

Image decode_png(const std::string& bytes, const std::string& name) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    throw Error(name + ": corrupt PNG: " + img.message);
  try {
    check_pixels(img.width, img.height, name);
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  // Read with alpha and drop it, as PIL's convert("RGB") does (no compositing).
  img.format = PNG_FORMAT_RGBA;
  std::vector<std::uint8_t> rgba(std::size_t{4} * img.width * img.height);
  if (!png_image_finish_read(&img, nullptr, rgba.data(), 0, nullptr)) {
    std::string msg = img.message;
    png_image_free(&img);
    throw Error(name + ": corrupt or truncated PNG: " + msg);
  }
  Image out;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.rgb.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  for (std::size_t i = 0, n = static_cast<std::size_t>(out.width) * out.height; i < n; ++i) {
    out.rgb[3 * i] = rgba[4 * i];
    out.rgb[3 * i + 1] = rgba[4 * i + 1];
    out.rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return out;
}

// --- JPEG ---------------------------------------------------------------------

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (a truncated file among them) are failures: a half-grey image
// must not pass silently into training.
extern "C" void jpeg_warn(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_fail(cinfo);
}

Image decode_jpeg(const std::string& bytes, const std::string& name, int min_short_side) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_warn;
  Image out;
  std::vector<std::uint8_t> row;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw Error(name + ": corrupt or truncated JPEG: " + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  try {
    check_pixels(cinfo.image_width, cinfo.image_height, name);
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  if (min_short_side > 0) {
    const unsigned short_side = std::min(cinfo.image_width, cinfo.image_height);
    for (unsigned denom : {8u, 4u, 2u}) {
      if (short_side / denom >= 2u * static_cast<unsigned>(min_short_side)) {
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        break;
      }
    }
  }
  jpeg_start_decompress(&cinfo);
  out.width = static_cast<int>(cinfo.output_width);
  out.height = static_cast<int>(cinfo.output_height);
  out.rgb.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  row.resize(static_cast<std::size_t>(cinfo.output_width) * cinfo.output_components);
  while (cinfo.output_scanline < cinfo.output_height) {
    const auto y = cinfo.output_scanline;
    std::uint8_t* dst = out.rgb.data() + static_cast<std::size_t>(y) * out.width * 3;
    // RGB rows go straight into the image; CMYK ones through `row`.
    JSAMPROW rows[1] = {cmyk ? row.data() : dst};
    jpeg_read_scanlines(&cinfo, rows, 1);
    if (!cmyk) continue;
    // Adobe writes inverted CMYK; PIL's conversion: channel = C * K / 255.
    for (int x = 0; x < out.width; ++x) {
      const std::uint8_t* px = row.data() + 4 * x;
      for (int c = 0; c < 3; ++c) dst[3 * x + c] = static_cast<std::uint8_t>(px[c] * px[3] / 255);
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

// --- PIL's resampling ---------------------------------------------------------

double bicubic(double x) {
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, count per output pixel
  std::vector<int> k;       // fixed point, ksize per output pixel

  // The input pixels [first, end) that outputs [out, out + count) read.
  std::pair<int, int> inputs(int out, int count) const {
    int end = 0;
    for (int o = out; o < out + count; ++o) end = std::max(end, bounds[2 * o] + bounds[2 * o + 1]);
    return {bounds[2 * out], end};
  }
};

// PIL's precompute_coeffs + normalize_coeffs_8bpc.
Coefficients coefficients(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * static_cast<std::size_t>(out_size));
  c.k.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<std::size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double k = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<std::size_t>(xx) * c.ksize + x] =
          static_cast<int>(k < 0 ? -0.5 + k * (1 << kPrecisionBits) : 0.5 + k * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

std::uint8_t clip8(std::int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// PIL's passes with 32-bit accumulators, as PIL's own 8-bit path: the sum
// of |coefficients| times 255 stays below 2^31 at 22 fraction bits. Both
// passes compute only a window of the output (what a crop keeps): every
// output pixel depends on its own coefficients alone, so the window is
// bit-identical to cropping the full result, and PIL's work for the
// discarded margins is skipped.

// The window [x0, x0 + w) x [y0, y0 + h) of `in`, transposed (pixel (x, y)
// goes to (y, x)), in 16 x 16 tiles so both sides stay in cache.
Image transpose_window(const Image& in, int x0, int w, int y0, int h) {
  Image out{h, w, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
  constexpr int kTile = 16;
  for (int yt = 0; yt < h; yt += kTile)
    for (int xt = 0; xt < w; xt += kTile)
      for (int y = yt; y < std::min(h, yt + kTile); ++y) {
        const std::uint8_t* src = in.rgb.data() + (static_cast<std::size_t>(y0 + y) * in.width + x0) * 3;
        for (int x = xt; x < std::min(w, xt + kTile); ++x) {
          std::uint8_t* dst = out.rgb.data() + (static_cast<std::size_t>(x) * h + y) * 3;
          dst[0] = src[x * 3];
          dst[1] = src[x * 3 + 1];
          dst[2] = src[x * 3 + 2];
        }
      }
  return out;
}

Image resample_vertical(const Image& in, const Coefficients& c, int first_row, int y0, int h);

// Columns [x0, x0 + w) of the resampled width, for rows [y0, y0 + h) of `in`.
// Done as the vertical pass on the transposed image: each output column is
// then a weighted sum of whole (transposed) rows, contiguous bytes that
// vectorise, where the direct loop is a short scalar sum per output pixel
// (it took half of the preprocessing time). The same integer sums, so the
// same bytes.
Image resample_horizontal(const Image& in, const Coefficients& c, int x0, int w, int y0, int h) {
  const auto [first, end] = c.inputs(x0, w);
  const Image columns = transpose_window(in, first, end - first, y0, h);  // one row per input column
  const Image resampled = resample_vertical(columns, c, first, x0, w);    // one row per output column
  return transpose_window(resampled, 0, h, 0, w);
}

// Rows [y0, y0 + h) of the resampled height; `in` holds the input's rows
// from `first_row` on. Row by row, so the inner loop runs along contiguous
// bytes and vectorises.
CLIP_VECTOR_CLONES Image resample_vertical(const Image& in, const Coefficients& c, int first_row, int y0, int h) {
  Image out{in.width, h, std::vector<std::uint8_t>(static_cast<std::size_t>(in.width) * h * 3)};
  const std::size_t stride = static_cast<std::size_t>(in.width) * 3;
  std::vector<std::int32_t> acc(stride);
  for (int y = 0; y < h; ++y) {
    const int ymin = c.bounds[2 * (y0 + y)] - first_row, n = c.bounds[2 * (y0 + y) + 1];
    const int* k = c.k.data() + static_cast<std::size_t>(y0 + y) * c.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int i = 0; i < n; ++i) {
      const std::uint8_t* row = in.rgb.data() + static_cast<std::size_t>(ymin + i) * stride;
      const std::int32_t ki = k[i];
      for (std::size_t x = 0; x < stride; ++x) acc[x] += row[x] * ki;
    }
    std::uint8_t* dst = out.rgb.data() + static_cast<std::size_t>(y) * stride;
    for (std::size_t x = 0; x < stride; ++x) dst[x] = clip8(acc[x]);
  }
  return out;
}

// PIL's resize (horizontal pass first, each pass only if the size changes,
// the horizontal pass only over the rows the vertical one reads), returning
// the window [left, left + w) x [top, top + h) of the width x height result.
Image resize_window(const Image& in, int width, int height, int left, int top, int w, int h) {
  if (width <= 0 || height <= 0) throw Error("resize to " + std::to_string(width) + "x" + std::to_string(height));
  if (left < 0 || top < 0 || w <= 0 || h <= 0 || left + w > width || top + h > height) throw Error("crop outside the image");
  std::optional<Coefficients> vertical;
  int first_row = top, rows = h;  // the input rows the vertical pass reads
  if (in.height != height) {
    vertical = coefficients(in.height, height);
    const auto [first, end] = vertical->inputs(top, h);
    first_row = first;
    rows = end - first;
  }
  Image horizontal = in.width != width ? resample_horizontal(in, coefficients(in.width, width), left, w, first_row, rows)
                                       : crop(in, left, first_row, w, rows);
  return vertical ? resample_vertical(horizontal, *vertical, first_row, top, h) : horizontal;
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name, int min_short_side) try {
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(bytes, name);
  if (bytes.size() >= 3 && std::memcmp(bytes.data(), "\xFF\xD8\xFF", 3) == 0) return decode_jpeg(bytes, name, min_short_side);
  if (bytes.empty()) throw Error(name + ": empty file, not an image");
  throw Error(name + ": unsupported image format (PNG and JPEG are supported)");
} catch (const std::bad_alloc&) {
  // Within the pixel limit yet more than the machine has: still this file's fault.
  throw Error(name + ": out of memory decoding the image");
}

Image load_image(const std::string& path, int min_short_side) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read image " + path);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  return decode_image(bytes, path, min_short_side);
}

std::string encode_png(const Image& image) {
  if (image.width <= 0 || image.height <= 0 || image.rgb.size() != static_cast<std::size_t>(image.width) * image.height * 3)
    throw Error("encode_png: the image is empty or its pixels do not match its size");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(image.width);
  img.height = static_cast<png_uint_32>(image.height);
  img.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&img, nullptr, &size, 0, image.rgb.data(), 0, nullptr))
    throw Error(std::string("encode_png: ") + img.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&img, out.data(), &size, 0, image.rgb.data(), 0, nullptr))
    throw Error(std::string("encode_png: ") + img.message);
  out.resize(size);
  return out;
}

Image load_document_image(const std::string& blob, const std::string& uri, const std::string& id, int min_short_side) {
  if (!blob.empty()) return decode_image(blob, uri.empty() ? "document " + id : uri, min_short_side);
  if (!uri.empty()) return load_image(uri, min_short_side);
  throw Error("document " + id + " has neither uri nor blob to read an image from");
}

Image resize(const Image& in, int width, int height) {
  if (width == in.width && height == in.height) return in;
  return resize_window(in, width, height, 0, 0, width, height);
}

namespace {
// torchvision's Resize(size): the shorter side becomes `size`, the longer
// one keeps the aspect ratio (truncated, as torchvision's int()).
std::pair<int, int> shorter_side_size(const Image& in, int size) {
  if (in.width <= in.height) return {size, static_cast<int>(static_cast<long long>(size) * in.height / in.width)};
  return {static_cast<int>(static_cast<long long>(size) * in.width / in.height), size};
}
}  // namespace

Image resize_shorter_side(const Image& in, int size) {
  const auto [w, h] = shorter_side_size(in, size);
  return resize(in, w, h);
}

Image crop(const Image& in, int left, int top, int width, int height) {
  if (left < 0 || top < 0 || left + width > in.width || top + height > in.height)
    throw Error("crop outside the image");
  Image out{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    std::memcpy(out.rgb.data() + static_cast<std::size_t>(y) * width * 3,
                in.rgb.data() + (static_cast<std::size_t>(top + y) * in.width + left) * 3, static_cast<std::size_t>(width) * 3);
  return out;
}

Image center_crop(const Image& in, int size) {
  // torchvision: int(round((h - size) / 2.0)), Python's round (half to even).
  const int top = static_cast<int>(std::nearbyint((in.height - size) / 2.0));
  const int left = static_cast<int>(std::nearbyint((in.width - size) / 2.0));
  return crop(in, left, top, size, size);
}

namespace {
const float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
}  // namespace

Image from_normalized_tensor(const at::Tensor& tensor) {
  if (tensor.dim() != 3 || tensor.size(0) != 3) throw Error("from_normalized_tensor expects [3, H, W]");
  const at::Tensor t = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
  Image out;
  out.height = static_cast<int>(t.size(1));
  out.width = static_cast<int>(t.size(2));
  const std::size_t plane = static_cast<std::size_t>(out.width) * out.height;
  out.rgb.resize(plane * 3);
  const float* p = t.data_ptr<float>();
  for (std::size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) {
      const float v = (p[c * plane + i] * kStd[c] + kMean[c]) * 255.0f;
      out.rgb[3 * i + c] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0f, 255.0f));
    }
  return out;
}

namespace {
// Interleaved RGB bytes to three normalized float planes, torchvision's
// arithmetic (ToTensor's x / 255, then Normalize's (x - mean) / std).
CLIP_VECTOR_CLONES void normalize_planes(const std::uint8_t* rgb, float* out, std::size_t plane) {
  for (int c = 0; c < 3; ++c) {
    const float mean = kMean[c], stdev = kStd[c];
    float* dst = out + c * plane;
    for (std::size_t i = 0; i < plane; ++i) dst[i] = (rgb[3 * i + c] / 255.0f - mean) / stdev;
  }
}
}  // namespace

at::Tensor to_normalized_tensor(const Image& in) {
  at::Tensor t = at::empty({3, in.height, in.width}, at::kFloat);
  normalize_planes(in.rgb.data(), t.data_ptr<float>(), static_cast<std::size_t>(in.width) * in.height);
  return t;
}

at::Tensor preprocess(const Image& in, int size) {
  // resize_shorter_side + center_crop, computing only the pixels the crop keeps.
  const auto [w, h] = shorter_side_size(in, size);
  const int top = static_cast<int>(std::nearbyint((h - size) / 2.0)), left = static_cast<int>(std::nearbyint((w - size) / 2.0));
  if (w == in.width && h == in.height) return to_normalized_tensor(crop(in, left, top, size, size));
  return to_normalized_tensor(resize_window(in, w, h, left, top, size, size));
}

at::Tensor preprocess_random_crop(const Image& in, int size, std::mt19937_64& rng, double min_scale) {
  const double area = static_cast<double>(in.width) * in.height;
  std::uniform_real_distribution<double> scale(min_scale, 1.0), log_ratio(std::log(3.0 / 4.0), std::log(4.0 / 3.0));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * scale(rng), ratio = std::exp(log_ratio(rng));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= in.width && h <= in.height) {
      std::uniform_int_distribution<int> top(0, in.height - h), left(0, in.width - w);
      const int t = top(rng), l = left(rng);
      return to_normalized_tensor(resize(crop(in, l, t, w, h), size, size));
    }
  }
  return preprocess(in, size);  // torchvision's fallback: a center crop
}

}  // namespace clip
