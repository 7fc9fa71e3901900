#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include "docflow/merge.hpp"

using docarray::Document;
using docarray::DocumentArray;

BOOST_AUTO_TEST_SUITE(merge)

BOOST_AUTO_TEST_CASE(join_merges_by_id_recursively) {
  Document left("a"), right("a");
  left.text = "caption";
  left.tags["from"] = "left";
  right.embedding = at::ones({4});
  right.tags["from"] = "right";
  right.tags["extra"] = 1;
  Document lc("c1"), rc("c1"), rc2("c2");
  lc.text = "left chunk";
  rc.embedding = at::zeros({2});
  left.add_chunk(lc);
  right.add_chunk(rc);
  right.add_chunk(rc2);
  right.add_match(Document("m1"));

  DocumentArray into({left});
  DocumentArray from({right, Document("b")});
  docflow::merge_arrays(into, from);
  BOOST_TEST(into.size() == 2u);
  const Document& a = into.get("a");
  BOOST_TEST(a.text == "caption");
  BOOST_TEST(a.embedding.defined());
  BOOST_TEST(a.tags.find("from")->as_string() == "left");  // set on both sides: the first branch wins
  BOOST_TEST(a.tags.find("extra")->as_int() == 1);
  BOOST_TEST(a.chunks.size() == 2u);
  BOOST_TEST(a.chunks.get("c1").text == "left chunk");
  BOOST_TEST(a.chunks.get("c1").embedding.defined());
  BOOST_TEST(a.matches.size() == 1u);
  BOOST_TEST(into.contains("b"));
}

BOOST_AUTO_TEST_SUITE_END()
