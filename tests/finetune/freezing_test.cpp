// Which parameters train under `freeze` and `trainable_blocks`, by name.
#include <boost/test/unit_test.hpp>

#include "freezing.hpp"

using docflow::finetune::is_trainable;

BOOST_AUTO_TEST_SUITE(freezing)

BOOST_AUTO_TEST_CASE(names_decide_what_trains) {
  const clip::ClipConfig b32 = clip::preset("openai/clip-vit-base-patch32");  // 12 layers in each tower
  BOOST_TEST(is_trainable("vision_model.encoder.layers.0.mlp.fc1.weight", b32, "none", -1));
  BOOST_TEST(!is_trainable("vision_model.encoder.layers.0.mlp.fc1.weight", b32, "vision", -1));
  BOOST_TEST(is_trainable("text_model.encoder.layers.0.mlp.fc1.weight", b32, "vision", -1));
  BOOST_TEST(!is_trainable("text_projection.weight", b32, "text", -1));
  BOOST_TEST(is_trainable("logit_scale", b32, "text", 0));
  // The last 2 of 12 blocks: 10 and 11.
  BOOST_TEST(!is_trainable("vision_model.encoder.layers.9.self_attn.k_proj.bias", b32, "none", 2));
  BOOST_TEST(is_trainable("vision_model.encoder.layers.10.self_attn.k_proj.bias", b32, "none", 2));
  BOOST_TEST(is_trainable("text_model.encoder.layers.11.layer_norm2.weight", b32, "none", 2));
  BOOST_TEST(!is_trainable("vision_model.pre_layrnorm.weight", b32, "none", 2));
  BOOST_TEST(!is_trainable("vision_model.embeddings.class_embedding", b32, "none", 2));
  BOOST_TEST(is_trainable("vision_model.post_layernorm.bias", b32, "none", 2));
  BOOST_TEST(is_trainable("visual_projection.weight", b32, "none", 0));
  BOOST_TEST(!is_trainable("visual_projection.weight", b32, "vision", 2));
}

BOOST_AUTO_TEST_SUITE_END()
