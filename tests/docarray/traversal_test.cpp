#include <boost/test/unit_test.hpp>

#include "docarray/document.hpp"
#include "docarray/error.hpp"

using docarray::Document;
using docarray::DocumentArray;

namespace {
// Two roots r0, r1; each with chunks rN.c0..c2 and matches rN.m0..m3; each
// chunk with one chunk and one match of its own. Text is the path.
DocumentArray tree() {
  DocumentArray da;
  for (int r = 0; r < 2; ++r) {
    Document root;
    root.text = "r" + std::to_string(r);
    for (int c = 0; c < 3; ++c) {
      Document chunk;
      chunk.text = root.text + ".c" + std::to_string(c);
      Document cc;
      cc.text = chunk.text + ".c0";
      Document cm;
      cm.text = chunk.text + ".m0";
      chunk.add_chunk(cc);
      chunk.add_match(cm);
      root.add_chunk(chunk);
    }
    for (int m = 0; m < 4; ++m) {
      Document match;
      match.text = root.text + ".m" + std::to_string(m);
      root.add_match(match);
    }
    da.append(root);
  }
  return da;
}

std::string texts(const std::vector<const Document*>& docs) {
  std::string out;
  for (const auto* d : docs) out += (out.empty() ? "" : " ") + d->text;
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(traversal)

BOOST_AUTO_TEST_CASE(paths_follow_docarray_grammar) {
  const DocumentArray da = tree();
  BOOST_TEST(texts(da.traverse_flat("@r")) == "r0 r1");
  BOOST_TEST(texts(da.traverse_flat("r")) == "r0 r1");
  BOOST_TEST(texts(da.traverse_flat("@c")) == "r0.c0 r0.c1 r0.c2 r1.c0 r1.c1 r1.c2");
  BOOST_TEST(texts(da.traverse_flat("@m[:1]")) == "r0.m0 r1.m0");
  BOOST_TEST(texts(da.traverse_flat("@m[-3:]")) == "r0.m1 r0.m2 r0.m3 r1.m1 r1.m2 r1.m3");
  BOOST_TEST(texts(da.traverse_flat("@c[:1]")) == "r0.c0 r1.c0");
  BOOST_TEST(texts(da.traverse_flat("@c[1]")) == "r0.c1 r1.c1");
  BOOST_TEST(texts(da.traverse_flat("@c[-1]")) == "r0.c2 r1.c2");
  BOOST_TEST(texts(da.traverse_flat("@cc")) == "r0.c0.c0 r0.c1.c0 r0.c2.c0 r1.c0.c0 r1.c1.c0 r1.c2.c0");
  BOOST_TEST(texts(da.traverse_flat("@c[2:]m")) == "r0.c2.m0 r1.c2.m0");
  BOOST_TEST(texts(da.traverse_flat("@r,c[:1]")) == "r0 r1 r0.c0 r1.c0");
  BOOST_TEST(texts(da.traverse_flat("@r[1:]")) == "r1");
  BOOST_TEST(texts(da.traverse_flat("@r[1:]c[0]")) == "r1.c0");
  BOOST_TEST(texts(da.traverse_flat("@m[10:]")).empty());
  BOOST_TEST(texts(da.traverse_flat("@c[5]")).empty());
}

BOOST_AUTO_TEST_CASE(mutable_traversal_changes_the_documents) {
  DocumentArray da = tree();
  for (Document* d : da.traverse_flat("@c")) d->modality = "text";
  BOOST_TEST(da[1].chunks[2].modality == "text");
}

BOOST_AUTO_TEST_CASE(bad_paths_are_errors_naming_position) {
  const DocumentArray da = tree();
  for (const char* bad : {"", "@", "@x", "@c[", "@c[:1", "@cr", "@r,", "@,c", "@c[a]", "@c[]", "@c[-]",
                          "@c[:99999999999999999999]", "@m[-99999999999999999999:]"}) {
    BOOST_TEST_CONTEXT("path " << bad) {
      try {
        da.traverse_flat(bad);
        BOOST_FAIL("expected an error");
      } catch (const docarray::Error& e) {
        BOOST_TEST(std::string(e.what()).find("invalid traversal path") != std::string::npos);
        BOOST_TEST(std::string(e.what()).find("position") != std::string::npos);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
