// The LibTorch CLIP against the reference implementation's outputs, from all
// three weight formats.
#include <boost/test/unit_test.hpp>

#include "clip/weights.hpp"
#include "fixtures.hpp"

using docflow::testing::relative_error;
using docflow::testing::SharedFixtures;
using docflow::testing::tensor_of;

namespace {

void check_against_reference(clip::ClipModel model) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto e = docflow::testing::expected();
  torch::Tensor pixels = tensor_of(e["pixel_values"]);
  std::vector<std::int64_t> ids_flat;
  for (auto& row : e["token_ids"]) {
    auto ids = row.get<std::vector<std::int64_t>>();
    ids.resize(77, 0);
    ids_flat.insert(ids_flat.end(), ids.begin(), ids.end());
  }
  torch::Tensor ids = torch::tensor(ids_flat, torch::kLong).reshape({-1, 77});
  torch::Tensor image = model->encode_image(pixels), text = model->encode_text(ids);
  BOOST_TEST(relative_error(image, tensor_of(e["image_embeds"])) < 1e-4);
  BOOST_TEST(relative_error(text, tensor_of(e["text_embeds"])) < 1e-4);
  BOOST_TEST(relative_error(model->logits_per_image(image, text), tensor_of(e["logits_per_image"])) < 1e-4);
  BOOST_TEST(model->logit_scale.item<double>() == e["logit_scale"].get<double>(), boost::test_tools::tolerance(1e-6));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(model_parity, *boost::unit_test::precondition(SharedFixtures()))

BOOST_AUTO_TEST_CASE(huggingface_safetensors) {
  BOOST_TEST((clip::detect_format(docflow::testing::fixture_dir() + "/model.safetensors") == clip::WeightFormat::Safetensors));
  check_against_reference(clip::load_model(docflow::testing::fixture_dir()));
}

BOOST_AUTO_TEST_CASE(openai_torchscript_archive) {
  const std::string path = docflow::testing::fixture_dir() + "/openai_jit.pt";
  BOOST_TEST((clip::detect_format(path) == clip::WeightFormat::TorchScript));
  check_against_reference(clip::load_model(path));
}

BOOST_AUTO_TEST_CASE(openai_state_dict) {
  const std::string path = docflow::testing::fixture_dir() + "/openai_state_dict.pt";
  BOOST_TEST((clip::detect_format(path) == clip::WeightFormat::StateDict));
  check_against_reference(clip::load_model(path));
}

BOOST_AUTO_TEST_CASE(save_then_load_is_identical) {
  clip::ClipModel model = clip::load_model(docflow::testing::fixture_dir() + "/openai_state_dict.pt");
  auto dir = std::filesystem::temp_directory_path() / ("docflow-clip-save-" + std::to_string(::getpid()));
  clip::save_pretrained(model, dir.string());
  clip::ClipModel back = clip::load_model(dir.string());
  auto a = model->named_parameters(), b = back->named_parameters();
  BOOST_TEST(a.size() == b.size());
  for (const auto& p : a) BOOST_TEST(torch::equal(p.value(), b[p.key()]), p.key());
  check_against_reference(back);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(model)

BOOST_AUTO_TEST_CASE(presets_build_and_towers_run_on_their_own) {
  clip::ClipModel m(clip::preset("tiny"));
  BOOST_TEST(m->named_parameters().size() == 78u);  // as many tensors as the Hugging Face checkpoint holds
  torch::Tensor img = m->vision_model(torch::randn({2, 3, 32, 32}));
  BOOST_TEST(img.sizes() == torch::IntArrayRef({2, 64}));
  torch::Tensor txt = m->text_model(torch::randint(0, 49407, {3, 77}));
  BOOST_TEST(txt.sizes() == torch::IntArrayRef({3, 32}));
  clip::ClipConfig b32 = clip::preset("openai/clip-vit-base-patch32");
  BOOST_TEST(b32.vision.hidden_size == 768);
  BOOST_TEST(b32.vision.num_heads == 12);
  BOOST_TEST(b32.text.num_heads == 8);
  BOOST_CHECK_THROW(clip::preset("ViT-H/99"), std::exception);
  BOOST_TEST(clip::describe_presets().find("openai/clip-vit-base-patch32: vision 768x12 /32 /224px, text 512x12") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
