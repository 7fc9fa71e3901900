// Broken weights: every case is a clear clip::Error, never a crash.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "clip/error.hpp"
#include "clip_errors.hpp"
#include "clip/safetensors.hpp"
#include "clip/weights.hpp"

namespace {

struct TempPath {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("docflow-weights-" + std::to_string(::getpid()));
  TempPath() { std::filesystem::create_directories(dir); }
  ~TempPath() { std::filesystem::remove_all(dir); }
  std::string file(const std::string& n) const { return (dir / n).string(); }
};

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  std::uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << data;
}

std::string error_of(const std::function<void()>& f) { return docflow::testing::clip_error_of(f); }

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(weights_errors)

BOOST_AUTO_TEST_CASE(safetensors_validation) {
  TempPath t;
  const std::string f = t.file("x.safetensors");
  auto read = [&] { clip::read_safetensors(f); };

  write_raw(f, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
  BOOST_TEST(clip::read_safetensors(f).tensors.at("a").numel() == 2);

  write_raw(f, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, '\0'));
  BOOST_TEST(contains(error_of(read), "outside the 4-byte data (truncated?)"), error_of(read));
  write_raw(f, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  BOOST_TEST(contains(error_of(read), "holds 8 bytes, its dtype and shape need 12"), error_of(read));
  write_raw(f, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            std::string(8, '\0'));
  BOOST_TEST(contains(error_of(read), "tensor 'a' appears twice"), error_of(read));
  write_raw(f, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
            std::string(8, '\0'));
  BOOST_TEST(contains(error_of(read), "must tile the data"), error_of(read));
  write_raw(f, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(8, '\0'));
  BOOST_TEST(contains(error_of(read), "4 bytes after the last tensor"), error_of(read));
  write_raw(f, R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0'));
  BOOST_TEST(contains(error_of(read), "unsupported dtype"), error_of(read));
  write_raw(f, "{not json", "");
  BOOST_TEST(contains(error_of(read), "header is not JSON"), error_of(read));
  {
    std::ofstream g(f, std::ios::binary);
    std::uint64_t huge = 1ull << 40;
    g.write(reinterpret_cast<const char*>(&huge), 8);
  }
  BOOST_TEST(contains(error_of(read), "exceeds the model_header_bytes limit (104857600"), error_of(read));
  {
    std::ofstream g(f, std::ios::binary);
    g << "abc";
  }
  BOOST_TEST(contains(error_of(read), "fewer than the 8-byte header length"), error_of(read));
}

BOOST_AUTO_TEST_CASE(model_mismatches_name_the_tensor) {
  TempPath t;
  clip::ClipModel tiny(clip::preset("tiny"));
  clip::save_pretrained(tiny, t.dir.string());
  auto tensors = clip::read_safetensors(t.file("model.safetensors")).tensors;

  auto missing = tensors;
  missing.erase("text_projection.weight");
  clip::ClipModel m(clip::preset("tiny"));
  BOOST_TEST(contains(error_of([&] { clip::load_state(m, missing, "src"); }),
                      "src: missing tensor 'text_projection.weight' of shape [32, 32]"));
  auto extra = tensors;
  extra["surprise.weight"] = torch::zeros({2});
  BOOST_TEST(contains(error_of([&] { clip::load_state(m, extra, "src"); }), "src: unexpected tensor 'surprise.weight'"));
  auto wrong = tensors;
  wrong["logit_scale"] = torch::zeros({2});
  BOOST_TEST(contains(error_of([&] { clip::load_state(m, wrong, "src"); }),
                      "src: tensor 'logit_scale' has shape [2], the model expects []"));

  // A truncated file is refused, not half-loaded.
  std::filesystem::resize_file(t.file("model.safetensors"), std::filesystem::file_size(t.file("model.safetensors")) - 100);
  BOOST_TEST(contains(error_of([&] { clip::load_model(t.dir.string()); }), "truncated"));
  // Unknown content, a missing folder entry, an unknown preset.
  std::ofstream(t.file("junk.bin")) << "hello world, not weights";
  BOOST_TEST(contains(error_of([&] { clip::load_model(t.file("junk.bin")); }), "unknown weights format"));
  BOOST_TEST(contains(error_of([&] { clip::load_model("no-such-preset"); }), "neither a weights file or folder nor a preset"));
  // OpenAI naming with a tensor missing.
  std::map<std::string, torch::Tensor> openai{{"visual.conv1.weight", torch::zeros({64, 3, 8, 8})}};
  clip::ClipConfig c;
  BOOST_TEST(contains(error_of([&] { clip::openai_to_hf(openai, c, "sd.pt"); }),
                      "sd.pt: missing tensor 'visual.positional_embedding'"));
}

BOOST_AUTO_TEST_SUITE_END()
