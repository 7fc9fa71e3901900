#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <regex>
#include <set>

#include "docarray/document.hpp"
#include "docarray/error.hpp"

using docarray::Document;
using docarray::DocumentArray;

BOOST_AUTO_TEST_SUITE(document)

BOOST_AUTO_TEST_CASE(ids_are_32_lowercase_hex_and_unique) {
  std::set<std::string> ids;
  const std::regex hex("[0-9a-f]{32}");
  for (int i = 0; i < 1000; ++i) {
    Document d;
    BOOST_TEST(std::regex_match(d.id, hex));
    ids.insert(d.id);
  }
  BOOST_TEST(ids.size() == 1000u);
}

BOOST_AUTO_TEST_CASE(chunks_and_matches_set_parent_granularity_adjacency) {
  Document root;
  root.granularity = 2;
  root.adjacency = 5;
  Document& c = root.add_chunk(Document());
  BOOST_TEST(c.parent_id == root.id);
  BOOST_TEST(c.granularity == 3);
  Document& m = root.add_match(Document());
  BOOST_TEST(m.adjacency == 6);
  BOOST_TEST(m.parent_id.empty());
  Document& cc = root.chunks[0].add_chunk(Document());
  BOOST_TEST(cc.granularity == 4);
  BOOST_TEST(cc.parent_id == root.chunks[0].id);
}

BOOST_AUTO_TEST_CASE(lookup_by_id_after_append_erase_and_id_change) {
  DocumentArray da;
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    Document d;
    d.text = std::to_string(i);
    ids.push_back(d.id);
    da.append(d);
  }
  BOOST_TEST(da.get(ids[7]).text == "7");
  BOOST_TEST(da.erase(ids[3]));
  BOOST_TEST(da.size() == 9u);
  BOOST_TEST(!da.contains(ids[3]));
  BOOST_TEST(da.get(ids[7]).text == "7");   // positions after the erased one moved
  BOOST_TEST(da.index_of(ids[9]) == 8);
  da.erase(0);
  BOOST_TEST(da.get(ids[9]).text == "9");
  BOOST_TEST(!da.contains(ids[0]));
  BOOST_CHECK_THROW(da.get(ids[0]), docarray::Error);
  BOOST_CHECK_THROW(da.erase(100), docarray::Error);

  da[2].id = "renamed";  // a mutable reference may change an id
  BOOST_TEST(da.get("renamed").text == "4");
  BOOST_TEST(!da.contains(ids[4]));
}

BOOST_AUTO_TEST_CASE(copies_and_moves_keep_the_index) {
  DocumentArray da;
  Document d;
  da.append(d);
  DocumentArray copy = da;
  DocumentArray moved = std::move(copy);
  BOOST_TEST(moved.contains(d.id));
  DocumentArray extended;
  extended.extend(moved);
  extended.extend(DocumentArray(std::vector<Document>{Document("x")}));
  BOOST_TEST(extended.size() == 2u);
  BOOST_TEST(extended.contains("x"));
}

BOOST_AUTO_TEST_CASE(batches_and_stacked_embeddings) {
  DocumentArray da;
  for (int i = 0; i < 7; ++i) {
    Document d;
    d.embedding = at::full({4}, static_cast<float>(i));
    da.append(d);
  }
  auto batches = da.batches(3);
  BOOST_TEST(batches.size() == 3u);
  BOOST_TEST(batches[2].size() == 1u);
  BOOST_CHECK_THROW(da.batches(0), docarray::Error);
  at::Tensor e = da.embeddings();
  BOOST_TEST(e.sizes() == at::IntArrayRef({7, 4}));
  BOOST_TEST(e[6][0].item<float>() == 6.0f);
  da[1].embedding = at::zeros({5});
  BOOST_CHECK_THROW(da.embeddings(), docarray::Error);
  da[1].embedding = at::Tensor();
  BOOST_CHECK_THROW(da.embeddings(), docarray::Error);
}

BOOST_AUTO_TEST_CASE(filter_by_modality_and_summary) {
  DocumentArray da;
  Document pair;
  Document img;
  img.modality = "image";
  Document txt;
  txt.modality = "text";
  txt.text = "caption";
  pair.add_chunk(img);
  pair.add_chunk(txt);
  da.append(pair);
  auto texts = da.filter_modality("text", "@c");
  BOOST_TEST(texts.size() == 1u);
  BOOST_TEST(texts[0]->text == "caption");
  std::string s = da.summary();
  BOOST_TEST(s.find("1 documents") != std::string::npos);
  BOOST_TEST(s.find("chunks: 2") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
