// CLIP executors in a real flow run through the CLI: images and captions in
// a JSON Lines file come out with the reference model's embeddings.
#include <boost/test/unit_test.hpp>

#include <ATen/ops/stack.h>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "clip/image.hpp"
#include "docarray/document_file.hpp"
#include "fixtures.hpp"

using docflow::testing::relative_error;
using docflow::testing::run_command;
using docflow::testing::SharedFixtures;
using docflow::testing::TempDir;
using docflow::testing::tensor_of;

BOOST_AUTO_TEST_SUITE(clip_flow, *boost::unit_test::precondition(SharedFixtures()))

BOOST_AUTO_TEST_CASE(encode_images_and_captions_from_the_command_line) {
  TempDir dir;
  auto e = docflow::testing::expected();
  {
    std::ofstream in(dir.file("pairs.jsonl"));
    for (std::size_t i = 0; i < 4; ++i) {
      nlohmann::json doc = {{"id", "pair" + std::to_string(i)},
                            {"chunks",
                             {{{"modality", "image"},
                               {"uri", docflow::testing::fixture_dir() + "/" + e["images"][i].get<std::string>()}},
                              {{"modality", "text"}, {"text", e["texts"][i]}}}}};
      in << doc.dump() << "\n";
    }
  }
  const std::string flow = std::string(PROJECT_SOURCE_DIR) + "/flows/clip-encode.yml";
  auto r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " run " + flow +
                       " --set reader.path=pairs.jsonl --set writer.path=out.jsonl --set with.workspace=runs" +
                       " --set image_encoder.model=" + docflow::testing::fixture_dir() +
                       " --set text_encoder.model=" + docflow::testing::fixture_dir() +
                       " --set preprocess.image_size=32 --set tokenize.vocab=" + docflow::testing::vocab_file());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  auto docs = docarray::load_documents(dir.file("out.jsonl"));
  BOOST_REQUIRE(docs.size() == 4u);
  std::vector<at::Tensor> images, texts;
  for (const auto& d : docs) {
    images.push_back(d.chunks[0].embedding);
    texts.push_back(d.chunks[1].embedding);
  }
  // Text goes through our tokenizer: exact up to float rounding. Images
  // through our decoder and resize: within the fixture README's 1e-2.
  BOOST_TEST(relative_error(at::stack(texts), tensor_of(e["text_embeds"])) < 1e-4);
  BOOST_TEST(relative_error(at::stack(images), tensor_of(e["image_embeds"])) < 2e-2);
}

// The stateless CLIP executors with replicas (the flow of the test above,
// every Clip* executor given 2 or 3 instances, 24 documents in requests of
// 2): each document comes out once, in order, with its own embeddings.
BOOST_AUTO_TEST_CASE(the_preprocessor_keeps_a_thumbnail_from_the_image_it_decoded) {
  TempDir dir;
  std::ofstream(dir.file("wide.png"), std::ios::binary)
      << clip::encode_png(clip::Image{300, 200, std::vector<std::uint8_t>(300 * 200 * 3, 90)});
  std::ofstream(dir.file("small.png"), std::ios::binary)
      << clip::encode_png(clip::Image{40, 50, std::vector<std::uint8_t>(40 * 50 * 3, 30)});
  std::ofstream(dir.file("pairs.jsonl")) << R"({"chunks": [{"modality": "image", "uri": "wide.png"}, {"modality": "text", "text": "a wide grey image"}]})"
                                         << "\n"
                                         << R"({"chunks": [{"uri": "small.png"}, {"text": "a small one"}]})" << "\n";
  auto r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " run " + PROJECT_SOURCE_DIR +
                       "/flows/clip-encode.yml --set reader.path=pairs.jsonl --set writer.path=out.jsonl "
                       "--set with.workspace=runs --set image_encoder.model=" + docflow::testing::fixture_dir() +
                       " --set text_encoder.model=" + docflow::testing::fixture_dir() +
                       " --set preprocess.image_size=32 --set preprocess.thumbnail=96 --set tokenize.vocab=" +
                       docflow::testing::vocab_file());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  auto docs = docarray::load_documents(dir.file("out.jsonl"));
  BOOST_REQUIRE_EQUAL(docs.size(), 2u);
  const auto& wide = docs[0].chunks[0];
  BOOST_TEST(wide.mime_type == "image/png");
  const clip::Image thumb = clip::decode_image(wide.blob, "thumbnail");
  BOOST_TEST(thumb.width == 96);  // the longer side, the aspect kept
  BOOST_TEST(thumb.height == 64);
  BOOST_TEST(wide.embedding.defined());
  // Smaller images are kept at their size; documents without a modality are
  // taken by their content: the uri one as an image, the text one as text.
  const clip::Image small = clip::decode_image(docs[1].chunks[0].blob, "thumbnail");
  BOOST_TEST(small.width == 40);
  BOOST_TEST(small.height == 50);
  BOOST_TEST(docs[1].chunks[0].embedding.defined());
  BOOST_TEST(docs[1].chunks[1].blob.empty());
  BOOST_TEST(docs[1].chunks[1].embedding.defined());
}

BOOST_AUTO_TEST_CASE(replicated_encoders_lose_and_duplicate_nothing) {
  TempDir dir;
  auto e = docflow::testing::expected();
  const int n = 24;
  {
    std::ofstream in(dir.file("pairs.jsonl"));
    for (int i = 0; i < n; ++i) {
      nlohmann::json doc = {{"id", "pair" + std::to_string(i)},
                            {"chunks",
                             {{{"modality", "image"},
                               {"uri", docflow::testing::fixture_dir() + "/" + e["images"][i % 4].get<std::string>()}},
                              {{"modality", "text"}, {"text", e["texts"][i % 4]}}}}};
      in << doc.dump() << "\n";
    }
  }
  {
    std::ifstream original(std::string(PROJECT_SOURCE_DIR) + "/flows/clip-encode.yml");
    std::ofstream replicated(dir.file("flow.yml"));
    int k = 0;
    for (std::string line; std::getline(original, line);) {
      replicated << line << "\n";
      if (line.rfind("    uses: Clip", 0) == 0) replicated << "    replicas: " << 2 + (k++ % 2) << "\n";
    }
    BOOST_REQUIRE_EQUAL(k, 4);
  }
  auto r = run_command("cd " + dir.path().string() + " && " + DOCFLOW_FLOW_EXE + " run flow.yml" +
                       " --set reader.path=pairs.jsonl --set reader.batch_size=2 --set writer.path=out.docs" +
                       " --set with.workspace=runs --set image_encoder.model=" + docflow::testing::fixture_dir() +
                       " --set text_encoder.model=" + docflow::testing::fixture_dir() +
                       " --set preprocess.image_size=32 --set tokenize.vocab=" + docflow::testing::vocab_file());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  auto docs = docarray::load_documents(dir.file("out.docs"));
  BOOST_REQUIRE_EQUAL(docs.size(), static_cast<std::size_t>(n));
  auto text_embeds = tensor_of(e["text_embeds"]), image_embeds = tensor_of(e["image_embeds"]);
  for (int i = 0; i < n; ++i) {
    BOOST_TEST(docs[i].id == "pair" + std::to_string(i));
    BOOST_REQUIRE_EQUAL(docs[i].chunks.size(), 2u);
    BOOST_TEST(relative_error(docs[i].chunks[1].embedding, text_embeds[i % 4]) < 1e-4);
    BOOST_TEST(relative_error(docs[i].chunks[0].embedding, image_embeds[i % 4]) < 2e-2);
  }
}

BOOST_AUTO_TEST_CASE(describe_lists_the_presets) {
  auto r = run_command(std::string(DOCFLOW_FLOW_EXE) + " plugins describe ClipImageEncoder");
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("openai/clip-vit-base-patch32: vision 768x12 /32 /224px, text 512x12, projection 512, 151M parameters") !=
                 std::string::npos,
             r.output);
}

BOOST_AUTO_TEST_SUITE_END()
