// The encoders in training mode: embeddings keep their autograd graph, so a
// loss downstream reaches both towers of the one shared model.
#include <boost/test/unit_test.hpp>

#include "../support/temp_dir.hpp"
#include "clip/shared_model.hpp"
#include "docflow/flow.hpp"

BOOST_AUTO_TEST_SUITE(training_mode)

BOOST_AUTO_TEST_CASE(gradients_reach_both_towers_of_the_shared_model) {
  docflow::testing::TempDir ws;
  docarray::Value image_with, text_with;
  image_with["model"] = "tiny";
  image_with["mode"] = "training";
  text_with = image_with;
  text_with["modality"] = "text";
  docflow::Flow flow;
  flow.add("ClipImageEncoder", "image", image_with).add("ClipTextEncoder", "text", text_with);
  docflow::Logger quiet;
  quiet.set_terminal(false);
  flow.open(ws.path(), &quiet);

  docarray::DocumentArray docs;
  for (int i = 0; i < 3; ++i) {
    docarray::Document pair, image, text;
    image.modality = "image";
    image.tensor = torch::randn({3, 32, 32});
    text.modality = "text";
    text.tensor = torch::randint(1, 49000, {77}, torch::kLong);
    text.tensor[5] = 49407;  // the end-of-text token
    pair.add_chunk(image);
    pair.add_chunk(text);
    docs.append(pair);
  }
  docarray::DocumentArray out = flow.post("/train", docs);
  // The encoders above work on @r, so nothing was encoded; encode chunks instead.
  BOOST_TEST(!out[0].chunks[0].embedding.defined());
  flow.close();

  image_with["traversal_path"] = "@c";
  text_with["traversal_path"] = "@c";
  docflow::Flow chunks;
  chunks.add("ClipImageEncoder", "image", image_with).add("ClipTextEncoder", "text", text_with);
  chunks.open(ws.path(), &quiet);
  out = chunks.post("/train", docs);
  std::vector<torch::Tensor> images, texts;
  for (const auto& d : out) {
    BOOST_REQUIRE(d.chunks[0].embedding.defined());
    BOOST_TEST(d.chunks[0].embedding.requires_grad());
    BOOST_TEST(d.chunks[1].embedding.requires_grad());
    images.push_back(d.chunks[0].embedding);
    texts.push_back(d.chunks[1].embedding);
  }
  torch::Tensor loss = torch::matmul(torch::stack(images), torch::stack(texts).t()).sum();
  loss.backward();
  // Both towers' parameters received gradients, through the one shared model.
  auto clip = chunks.shared_resources().get<clip::SharedClip>("clip");
  auto grad_norm = [&](const std::string& name) {
    torch::Tensor g = clip->model->named_parameters()[name].grad();
    return g.defined() ? g.norm().item<double>() : 0.0;
  };
  BOOST_TEST(grad_norm("vision_model.embeddings.patch_embedding.weight") > 0.0);
  BOOST_TEST(grad_norm("text_model.embeddings.token_embedding.weight") > 0.0);
  BOOST_TEST(grad_norm("visual_projection.weight") > 0.0);
  BOOST_TEST(grad_norm("text_projection.weight") > 0.0);
  chunks.close();
}

BOOST_AUTO_TEST_SUITE_END()
