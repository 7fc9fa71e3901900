#include <boost/test/unit_test.hpp>
#include <jpeglib.h>
#include <png.h>

#include <random>
#include <tuple>

#include <ATen/ops/equal.h>

#include "clip/error.hpp"
#include "clip/image.hpp"
#include "encode_jpeg.hpp"
#include "fixtures.hpp"

using docflow::testing::SharedFixtures;
using docflow::testing::tensor_of;

using docflow::testing::encode_jpeg;

namespace {

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("docflow-img-" + std::to_string(::getpid()) + "-" + name)).string();
}

void write_png(const std::string& path, int w, int h, png_uint_32 format, const std::vector<std::uint8_t>& pixels) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = format;
  BOOST_REQUIRE(png_image_write_to_file(&img, path.c_str(), 0, pixels.data(), 0, nullptr));
}

clip::Image gradient(int w, int h) {
  clip::Image im{w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = im.rgb.data() + (static_cast<std::size_t>(y) * w + x) * 3;
      p[0] = static_cast<std::uint8_t>(255 * x / std::max(1, w - 1));
      p[1] = static_cast<std::uint8_t>(255 * y / std::max(1, h - 1));
      p[2] = 128;
    }
  return im;
}

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(image)

BOOST_AUTO_TEST_CASE(png_files_match_the_reference_preprocessing, *boost::unit_test::precondition(SharedFixtures())) {
  auto e = docflow::testing::expected();
  at::Tensor want = tensor_of(e["pixel_values"]);
  for (std::size_t i = 0; i < e["images"].size(); ++i) {
    clip::Image im = clip::load_image(docflow::testing::fixture_dir() + "/" + e["images"][i].get<std::string>());
    at::Tensor got = clip::preprocess(im, 32);
    at::Tensor diff = (got - want[static_cast<std::int64_t>(i)]).abs();
    BOOST_TEST_MESSAGE("image" << i << " " << im.width << "x" << im.height << ": max |diff| " << diff.max().item<double>()
                               << ", mean " << diff.mean().item<double>());
    // PIL's own fixed-point bicubic: within one 8-bit step (1/255/std = 0.0146).
    BOOST_TEST(diff.max().item<double>() < 0.015);
  }
}

BOOST_AUTO_TEST_CASE(formats_become_rgb) {
  const std::string grey = temp_file("grey.png"), rgba = temp_file("rgba.png"), jpg = temp_file("x.jpg");
  write_png(grey, 2, 1, PNG_FORMAT_GRAY, {10, 200});
  clip::Image g = clip::load_image(grey);
  BOOST_TEST((g.rgb == std::vector<std::uint8_t>{10, 10, 10, 200, 200, 200}));
  write_png(rgba, 1, 1, PNG_FORMAT_RGBA, {30, 60, 90, 0});
  clip::Image a = clip::load_image(rgba);
  BOOST_TEST((a.rgb == std::vector<std::uint8_t>{30, 60, 90}));  // alpha dropped, as PIL's convert("RGB")
  clip::Image src = gradient(64, 48);
  std::ofstream(jpg, std::ios::binary) << encode_jpeg(src);
  clip::Image j = clip::load_image(jpg);
  BOOST_TEST(j.width == 64);
  BOOST_TEST(j.height == 48);
  double err = 0;
  for (std::size_t i = 0; i < j.rgb.size(); ++i) err = std::max(err, std::abs(double(j.rgb[i]) - src.rgb[i]));
  BOOST_TEST(err < 16);  // lossy, but the same picture
  // A large JPEG decodes at a reduced scale when the target is small.
  std::string big = encode_jpeg(gradient(800, 600));
  clip::Image scaled = clip::decode_image(big, "big.jpg", 32);
  BOOST_TEST(scaled.width == 100);
  BOOST_TEST(clip::decode_image(big, "big.jpg").width == 800);
  for (const auto& f : {grey, rgba, jpg}) std::filesystem::remove(f);
}

BOOST_AUTO_TEST_CASE(resize_crop_and_normalise) {
  clip::Image im = gradient(64, 40);
  clip::Image r = clip::resize_shorter_side(im, 20);
  BOOST_TEST(r.width == 32);
  BOOST_TEST(r.height == 20);
  clip::Image c = clip::center_crop(r, 20);
  BOOST_TEST(c.width == 20);
  at::Tensor t = clip::preprocess(im, 16);
  BOOST_TEST(t.sizes() == at::IntArrayRef({3, 16, 16}));
  // A constant image stays constant through resampling and normalises exactly.
  clip::Image flat{10, 10, std::vector<std::uint8_t>(300, 255)};
  at::Tensor f = clip::preprocess(flat, 4);
  BOOST_TEST(f[0][0][0].item<float>() == (1.0f - 0.48145466f) / 0.26862954f, boost::test_tools::tolerance(1e-5f));
  std::mt19937_64 rng(7), rng2(7);
  at::Tensor a = clip::preprocess_random_crop(im, 16, rng), b = clip::preprocess_random_crop(im, 16, rng2);
  BOOST_TEST(at::equal(a, b));  // seeded
}

BOOST_AUTO_TEST_CASE(preprocess_computes_only_the_crop_yet_equals_resize_then_crop) {
  // preprocess() resamples only the window the center crop keeps; every
  // pixel must equal the full resize followed by the crop, for landscape,
  // portrait, square, upscaled and one-dimension-only cases.
  std::mt19937 rng(3);
  for (auto [w, h, size] : std::vector<std::tuple<int, int, int>>{
           {640, 480, 224}, {480, 640, 224}, {300, 300, 224}, {50, 90, 224}, {224, 500, 224}, {97, 61, 32}}) {
    clip::Image im{w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
    for (auto& b : im.rgb) b = static_cast<std::uint8_t>(rng());
    const at::Tensor full = clip::to_normalized_tensor(clip::center_crop(clip::resize_shorter_side(im, size), size));
    BOOST_TEST(at::equal(clip::preprocess(im, size), full), w << "x" << h << " -> " << size);
  }
}

BOOST_AUTO_TEST_CASE(bad_images_name_the_file) {
  const std::string png = temp_file("trunc.png"), jpg = temp_file("trunc.jpg"), gif = temp_file("x.gif");
  write_png(png, 16, 16, PNG_FORMAT_RGB, std::vector<std::uint8_t>(16 * 16 * 3, 7));
  std::filesystem::resize_file(png, std::filesystem::file_size(png) - 20);
  std::string msg;
  try {
    clip::load_image(png);
  } catch (const clip::Error& e) {
    msg = e.what();
  }
  BOOST_TEST(contains(msg, png + ": corrupt"), msg);
  std::string bytes = encode_jpeg(gradient(64, 64));
  std::ofstream(jpg, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  msg.clear();
  try {
    clip::load_image(jpg);
  } catch (const clip::Error& e) {
    msg = e.what();
  }
  BOOST_TEST(contains(msg, jpg + ": corrupt or truncated JPEG"), msg);
  std::ofstream(gif, std::ios::binary) << "GIF89a....";
  BOOST_CHECK_EXCEPTION(clip::load_image(gif), clip::Error,
                        [&](const clip::Error& e) { return contains(e.what(), "unsupported image format"); });
  BOOST_CHECK_THROW(clip::load_image(temp_file("missing.png")), clip::Error);
  for (const auto& f : {png, jpg, gif}) std::filesystem::remove(f);
}

BOOST_AUTO_TEST_SUITE_END()
