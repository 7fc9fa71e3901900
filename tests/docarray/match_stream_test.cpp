// Matching an index streamed from a .docs file block by block gives what
// matching the whole index in memory gives, and bad files are errors that
// name them, with the queries left as they were.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../support/temp_dir.hpp"
#include "docarray/binary_io.hpp"
#include "docarray/error.hpp"
#include "docarray/jsonl_io.hpp"
#include "docarray/match.hpp"

using docarray::Document;
using docarray::DocumentArray;
using docflow::testing::TempDir;

namespace {

DocumentArray random_docs(int n, int dim, const std::string& prefix) {
  DocumentArray da;
  at::Tensor e = at::randn({n, dim});
  for (int i = 0; i < n; ++i) {
    Document d(prefix + std::to_string(i));
    d.embedding = e[i].clone();
    d.text = "document " + std::to_string(i);
    d.tags["i"] = static_cast<std::int64_t>(i);
    da.append(d);
  }
  return da;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string error_of(DocumentArray& queries, const std::string& file, const docarray::MatchOptions& opt = {}) {
  try {
    docarray::match_file(queries, file, opt);
  } catch (const docarray::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(match_stream)

BOOST_AUTO_TEST_CASE(streamed_blocks_match_as_the_whole_index_in_memory) {
  at::manual_seed(11);
  TempDir dir;
  const DocumentArray index = random_docs(1000, 32, "x");
  const std::string file = dir.file("index.docs");
  docarray::save_binary(index, file);
  for (std::string metric : {"cosine", "dot", "euclidean"})
    for (std::size_t block : {std::size_t(1), std::size_t(7), std::size_t(256), std::size_t(5000)})
      for (int nq : {3, 20}) {
        BOOST_TEST_CONTEXT(metric << ", blocks of " << block << ", " << nq << " queries") {
          const DocumentArray queries = random_docs(nq, 32, "q");
          docarray::MatchOptions opt;
          opt.metric = metric;
          opt.limit = 10;
          DocumentArray expected = queries, streamed = queries;
          docarray::match(expected, index, opt);
          opt.batch_size = block;
          docarray::match_file(streamed, file, opt);
          for (int q = 0; q < nq; ++q) {
            BOOST_REQUIRE_EQUAL(streamed[q].matches.size(), 10u);
            for (std::size_t j = 0; j < 10; ++j) {
              const Document& a = expected[q].matches[j];
              const Document& b = streamed[q].matches[j];
              BOOST_TEST(a.id == b.id);
              const double x = a.scores.at(metric).value, y = b.scores.at(metric).value;
              BOOST_TEST(std::abs(x - y) <= 1e-5 * std::max(1.0, std::abs(x)), x << " vs " << y);
              // The whole document, as match() copies it (not only its id).
              BOOST_TEST(b.text == a.text);
              BOOST_TEST(b.find_tag("i")->as_int() == a.find_tag("i")->as_int());
              BOOST_TEST(at::equal(b.embedding, a.embedding));
              BOOST_TEST(b.scores.at(metric).ref_id == queries[q].id);
            }
          }
        }
      }
}

BOOST_AUTO_TEST_CASE(exclude_self_and_a_second_match_replace_as_in_memory) {
  at::manual_seed(12);
  TempDir dir;
  const DocumentArray index = random_docs(300, 16, "x");
  docarray::save_binary(index, dir.file("index.docs"));
  DocumentArray expected, streamed;
  for (int i : {0, 5, 299}) expected.append(index[i]);
  streamed = expected;
  docarray::MatchOptions opt;
  opt.limit = 5;
  opt.exclude_self = true;
  docarray::match(expected, index, opt);
  opt.batch_size = 64;
  docarray::match_file(streamed, dir.file("index.docs"), opt);
  docarray::match_file(streamed, dir.file("index.docs"), opt);  // replaces, as DocArray does
  for (std::size_t q = 0; q < expected.size(); ++q) {
    BOOST_REQUIRE_EQUAL(streamed[q].matches.size(), 5u);
    for (std::size_t j = 0; j < 5; ++j) {
      BOOST_TEST(streamed[q].matches[j].id == expected[q].matches[j].id);
      BOOST_TEST(streamed[q].matches[j].id != streamed[q].id);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_files_name_themselves_and_leave_the_queries_unchanged) {
  at::manual_seed(13);
  TempDir dir;
  const DocumentArray index = random_docs(200, 8, "x");
  docarray::save_binary(index, dir.file("index.docs"));
  DocumentArray queries = random_docs(2, 8, "q");
  queries[0].matches.append(Document("kept"));

  BOOST_TEST(contains(error_of(queries, dir.file("missing.docs")), "match_file: cannot open " + dir.file("missing.docs")));
  docarray::save_jsonl(index, dir.file("index.jsonl"));
  BOOST_TEST(contains(error_of(queries, dir.file("index.jsonl")), dir.file("index.jsonl") + " is not a binary document file"));

  // A file cut in the middle of a record: the reader's error (naming the
  // file), raised before any query's matches are touched.
  const auto size = std::filesystem::file_size(dir.file("index.docs"));
  std::filesystem::copy_file(dir.file("index.docs"), dir.file("cut.docs"));
  std::filesystem::resize_file(dir.file("cut.docs"), size * 2 / 3);
  docarray::MatchOptions opt;
  opt.batch_size = 16;
  const std::string cut = error_of(queries, dir.file("cut.docs"), opt);
  BOOST_TEST(contains(cut, dir.file("cut.docs")), cut);
  BOOST_TEST(queries[0].matches.size() == 1u);
  BOOST_TEST(queries[0].matches[0].id == "kept");

  // An index of another width names the document.
  docarray::save_binary(random_docs(3, 9, "wide"), dir.file("wide.docs"));
  const std::string wide = error_of(queries, dir.file("wide.docs"));
  BOOST_TEST(contains(wide, "index document 'wide0' has an embedding of 9 values, expected 8"), wide);
  BOOST_TEST(queries[0].matches.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
