#include <boost/test/unit_test.hpp>

#include <fstream>

#include "clip/error.hpp"
#include "clip/tokenizer.hpp"
#include "fixtures.hpp"

using docflow::testing::SharedFixtures;

BOOST_AUTO_TEST_SUITE(tokenizer, *boost::unit_test::precondition(SharedFixtures()))

BOOST_AUTO_TEST_CASE(all_reference_cases_token_for_token) {
  clip::Tokenizer tok = clip::Tokenizer::from_bpe_file(docflow::testing::vocab_file());
  BOOST_TEST(tok.vocab_size() == 49408u);
  std::ifstream cases(docflow::testing::fixture_dir() + "/tokenizer_cases.jsonl");
  int n = 0;
  for (std::string line; std::getline(cases, line); ++n) {
    auto c = nlohmann::json::parse(line);
    const std::string text = c["text"];
    BOOST_TEST_CONTEXT("case " << n << ": " << text) {
      std::vector<std::int64_t> ids = tok.tokenize(text, 1000, false);
      ids.erase(std::find(ids.begin() + 1, ids.end(), 0), ids.end());  // drop the padding
      BOOST_TEST(ids == c["ids"].get<std::vector<std::int64_t>>(), boost::test_tools::per_element());
      std::vector<std::int64_t> cut = tok.tokenize(text, 77, true);
      auto want = c["ids_context77_truncated"].get<std::vector<std::int64_t>>();
      want.resize(77, 0);
      BOOST_TEST(cut == want, boost::test_tools::per_element());
    }
  }
  BOOST_TEST(n == 60);
}

BOOST_AUTO_TEST_CASE(expected_json_captions_and_truncation) {
  clip::Tokenizer tok = clip::Tokenizer::from_bpe_file(docflow::testing::vocab_file());
  auto e = docflow::testing::expected();
  for (std::size_t i = 0; i < e["texts"].size(); ++i) {
    auto ids = tok.tokenize(e["texts"][i].get<std::string>());
    auto want = e["token_ids"][i].get<std::vector<std::int64_t>>();
    want.resize(77, 0);
    BOOST_TEST(ids == want, boost::test_tools::per_element());
  }
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "dress ";
  auto cut = tok.tokenize(long_text, 77, true);
  BOOST_TEST(cut.size() == 77u);
  BOOST_TEST(cut.front() == clip::Tokenizer::kStartOfText);
  BOOST_TEST(cut.back() == clip::Tokenizer::kEndOfText);
  BOOST_CHECK_THROW(tok.tokenize(long_text, 77, false), clip::Error);
  // HTML entities are unescaped (twice), whitespace collapsed, case folded.
  BOOST_TEST(tok.encode("A &amp;amp; B") == tok.encode("a & b"), boost::test_tools::per_element());
  BOOST_TEST(tok.encode("red\t\n  dress") == tok.encode("RED DRESS"), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(vocab_json_and_merges_round_trip) {
  clip::Tokenizer tok = clip::Tokenizer::from_bpe_file(docflow::testing::vocab_file());
  auto dir = std::filesystem::temp_directory_path() / "docflow-tokenizer-test";
  tok.save(dir.string());
  clip::Tokenizer hf = clip::Tokenizer::from_vocab_and_merges((dir / "vocab.json").string(), (dir / "merges.txt").string());
  for (const char* t : {"a photo of a red dress", "连衣裙 dress コート", "café naïve 🙂"})
    BOOST_TEST(hf.tokenize(t) == tok.tokenize(t), boost::test_tools::per_element());
  std::filesystem::remove_all(dir);
  BOOST_CHECK_THROW(clip::Tokenizer::from_bpe_file("/nonexistent/vocab.txt.gz"), clip::Error);
}

BOOST_AUTO_TEST_SUITE_END()
