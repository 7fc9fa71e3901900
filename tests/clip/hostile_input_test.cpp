// Hostile model folders, images and texts: each is refused with a clip::Error
// naming the file, before anything large is allocated, or handled in time
// linear in its size.
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "../support/temp_dir.hpp"
#include "clip/error.hpp"
#include "clip_errors.hpp"
#include "encode_jpeg.hpp"
#include "clip/image.hpp"
#include "clip/tokenizer.hpp"
#include "clip/weights.hpp"
#include "fixtures.hpp"

using docflow::testing::TempDir;

namespace {

std::string error_of(const std::function<void()>& f) { return docflow::testing::clip_error_of(f); }

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

void put_be32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

// A real 2x2 PNG whose header then claims width x height (CRC fixed up).
std::string png_claiming(std::uint32_t width, std::uint32_t height) {
  std::string png = clip::encode_png(clip::Image{2, 2, std::vector<std::uint8_t>(12, 128)});
  put_be32(png, 16, width);  // IHDR data starts at 16: signature 8, length 4, type 4
  put_be32(png, 20, height);
  put_be32(png, 29, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
  return png;
}

// A real 8x8 JPEG whose SOF0 header then claims width x height.
std::string jpeg_claiming(std::uint16_t width, std::uint16_t height) {
  std::string jpeg = docflow::testing::encode_jpeg(clip::Image{8, 8, std::vector<std::uint8_t>(192, 200)});
  std::size_t sof = jpeg.find("\xFF\xC0");
  BOOST_REQUIRE(sof != std::string::npos);
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width);
  return jpeg;
}

// The tiny preset saved as a Hugging Face folder, its config.json then edited.
std::string model_folder_with(const TempDir& dir, const std::function<void(nlohmann::json&)>& edit) {
  std::string folder = dir.file("model");
  clip::ClipModel model = clip::load_model("tiny");
  clip::save_pretrained(model, folder);
  nlohmann::json config;
  std::ifstream(folder + "/config.json") >> config;
  edit(config);
  std::ofstream(folder + "/config.json") << config.dump();
  return folder;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_input)

BOOST_AUTO_TEST_CASE(decompression_bombs_are_refused_from_the_header) {
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(clip::decode_image(png_claiming(2, 2), "ok.png").width == 2);
  std::string e = error_of([] { clip::decode_image(png_claiming(100000, 100000), "bomb.png"); });
  BOOST_TEST(e == "bomb.png: the image header declares 100000x100000 pixels, more than the image_pixels limit "
                  "(178956970; raise it with --input-limit image_pixels=N)",
             e);
  // 2^32 bytes of RGBA would wrap a 32-bit size computation.
  e = error_of([] { clip::decode_image(png_claiming(65536, 16384), "wrap.png"); });
  BOOST_TEST(contains(e, "wrap.png: the image header declares 65536x16384 pixels"), e);
  BOOST_TEST(clip::decode_image(jpeg_claiming(8, 8), "ok.jpg").width == 8);
  e = error_of([] { clip::decode_image(jpeg_claiming(65000, 65000), "bomb.jpg"); });
  BOOST_TEST(contains(e, "bomb.jpg: the image header declares 65000x65000 pixels"), e);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_CASE(absurd_configs_are_refused_before_the_model_is_built) {
  TempDir dir;
  std::string folder = model_folder_with(dir, [](nlohmann::json& c) { c["vision_config"]["patch_size"] = 0; });
  std::string e = error_of([&] { clip::load_model(folder); });
  BOOST_TEST(contains(e, "config.json: vision_config.patch_size must be between 1 and"), e);
  folder = model_folder_with(dir, [](nlohmann::json& c) { c["text_config"]["num_hidden_layers"] = 20000; });
  e = error_of([&] { clip::load_model(folder); });
  BOOST_TEST(contains(e, "text_config.num_hidden_layers must be between 0 and 1024, found 20000"), e);
  // Sizes that are not 64-bit integers: a number too long for 64 bits parses
  // as a float, and converting that to an integer was undefined behaviour.
  folder = model_folder_with(dir, [](nlohmann::json& c) { c["text_config"]["intermediate_size"] = 1.1e31; });
  e = error_of([&] { clip::load_model(folder); });
  BOOST_TEST(contains(e, "config.json: field text_config.intermediate_size must be an integer: 1.1e+31"), e);
  folder = model_folder_with(dir, [](nlohmann::json& c) { c["vision_config"]["hidden_size"] = 768.5; });
  e = error_of([&] { clip::load_model(folder); });
  BOOST_TEST(contains(e, "field vision_config.hidden_size must be an integer: 768.5"), e);
  folder = model_folder_with(dir, [](nlohmann::json& c) { c["projection_dim"] = std::uint64_t{1} << 63; });
  e = error_of([&] { clip::load_model(folder); });
  BOOST_TEST(contains(e, "field projection_dim is out of range: 9223372036854775808"), e);
  // Within every bound, but not what the weights hold: refused before allocating.
  folder = model_folder_with(dir, [](nlohmann::json& c) { c["text_config"]["num_hidden_layers"] = 1000; });
  auto t0 = std::chrono::steady_clock::now();
  e = error_of([&] { clip::load_model(folder); });
  BOOST_TEST(contains(e, "config.json and the weights disagree"), e);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(long_texts_tokenize_in_linear_time, *boost::unit_test::precondition(docflow::testing::SharedFixtures())) {
  clip::Tokenizer tok = clip::Tokenizer::load(docflow::testing::vocab_file());
  auto t0 = std::chrono::steady_clock::now();
  // One 300,000-letter word (quadratic BPE: minutes), 200,000 '&' (quadratic unescape).
  std::string word(300000, 'x');
  for (std::size_t i = 0; i < word.size(); i += 7) word[i] = 'a' + static_cast<char>(i % 26);
  auto ids = tok.tokenize(word);
  BOOST_TEST(ids.size() == 77u);
  BOOST_TEST(ids.back() == clip::Tokenizer::kEndOfText);
  BOOST_TEST(tok.tokenize(std::string(200000, '&')).size() == 77u);
  // Past text_bytes: cut with truncation, refused without.
  std::string huge(3 << 20, 'a');
  for (std::size_t i = 1; i < huge.size(); i += 2) huge[i] = ' ';
  BOOST_TEST(tok.tokenize(huge).size() == 77u);
  std::string e = error_of([&] { tok.tokenize(huge, 77, false); });
  BOOST_TEST(contains(e, "longer than the text_bytes limit"), e);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)));
}

BOOST_AUTO_TEST_SUITE_END()
