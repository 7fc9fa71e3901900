// The pair readers' formats: CSV quoting, TSV, JSON Lines documents, a folder
// with captions beside the images or in a captions file; errors name the
// file and line.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "../support/temp_dir.hpp"
#include "docflow/error.hpp"
#include "generated_pairs.hpp"
#include "pairs.hpp"

using docflow::finetune::load_pairs;
using docflow::finetune::PairSourceOptions;
using docflow::testing::TempDir;
namespace fs = std::filesystem;

namespace {
std::string error_of(const PairSourceOptions& o) {
  try {
    load_pairs(o);
  } catch (const docflow::Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

BOOST_AUTO_TEST_SUITE(pairs)

BOOST_AUTO_TEST_CASE(csv_fields_follow_rfc_4180) {
  std::istringstream in("a,\"b, with comma\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\nlast");
  std::vector<std::string> f;
  int line = 1;
  BOOST_REQUIRE(docflow::finetune::read_delimited_record(in, ',', f, line));
  BOOST_TEST((f == std::vector<std::string>{"a", "b, with comma", "say \"hi\""}));
  BOOST_REQUIRE(docflow::finetune::read_delimited_record(in, ',', f, line));
  BOOST_TEST((f == std::vector<std::string>{"two\nlines", "", "x"}));
  BOOST_TEST(line == 4);
  BOOST_REQUIRE(docflow::finetune::read_delimited_record(in, ',', f, line));
  BOOST_TEST((f == std::vector<std::string>{"last"}));
  BOOST_TEST(!docflow::finetune::read_delimited_record(in, ',', f, line));

  std::istringstream open_quote("\"never closed,x\n");
  line = 1;
  BOOST_CHECK_THROW(docflow::finetune::read_delimited_record(open_quote, ',', f, line), docflow::Error);
}

BOOST_AUTO_TEST_CASE(a_csv_resolves_paths_against_its_folder_and_keeps_labels) {
  TempDir dir;
  const fs::path csv = docflow::testing::write_pairs(dir.path() / "data", "train", 3, 7);
  PairSourceOptions o;
  o.path = csv.string();
  o.label_column = "label";
  auto records = load_pairs(o);
  BOOST_REQUIRE(records.size() == 3u);
  BOOST_TEST(records[1].image.uri == (dir.path() / "data" / "images" / "train-1.png").string());
  BOOST_TEST(records[1].where == csv.string() + ":3");
  BOOST_TEST(records[0].caption.find(" on a ") != std::string::npos);
  BOOST_TEST(records[0].label.has_value());
}

BOOST_AUTO_TEST_CASE(a_tsv_with_other_column_names) {
  TempDir dir;
  std::ofstream(dir.file("pairs.tsv")) << "file\ttext\nimg/a.png\ta cat, sitting\n\n/abs/b.jpg\ta dog\n";
  PairSourceOptions o;
  o.path = dir.file("pairs.tsv");
  o.image_column = "file";
  o.caption_column = "text";
  auto records = load_pairs(o);
  BOOST_REQUIRE(records.size() == 2u);  // the blank line is skipped
  BOOST_TEST(records[0].caption == "a cat, sitting");
  BOOST_TEST(records[1].image.uri == "/abs/b.jpg");
  BOOST_TEST(records[1].where == dir.file("pairs.tsv") + ":4");
}

BOOST_AUTO_TEST_CASE(bad_tables_name_file_line_and_column) {
  TempDir dir;
  PairSourceOptions o;
  o.path = dir.file("bad.csv");
  std::ofstream(o.path) << "image,caption\na.png,one\nb.png\nc.png,three\n";
  BOOST_TEST(error_of(o) == o.path + ":3: 1 fields, the header has 2");
  std::ofstream(o.path) << "image,caption\na.png,\n";
  BOOST_TEST(error_of(o) == o.path + ":2: the caption ('caption') is empty");
  std::ofstream(o.path) << "img,caption\n";
  BOOST_TEST(error_of(o) == o.path + ":1: no column 'image' (image_column); the header has 'img', 'caption'");
  o.path = dir.file("data.parquet");
  std::ofstream(o.path) << "x";
  BOOST_TEST(error_of(o).find("cannot tell its format from the extension '.parquet'") != std::string::npos);
  o.path = dir.file("missing.csv");
  BOOST_TEST(error_of(o) == o.path + ": no such file or folder");
}

BOOST_AUTO_TEST_CASE(json_lines_documents_with_an_image_and_a_text_chunk) {
  TempDir dir;
  std::ofstream(dir.file("pairs.jsonl"))
      << R"({"id":"p1","tags":{"label":"red"},"chunks":[{"modality":"image","uri":"img/1.png"},{"modality":"text","text":"a red thing"}]})"
      << "\n"
      << R"({"id":"p2","chunks":[{"modality":"text","text":"no image"}]})" << "\n";
  PairSourceOptions o;
  o.path = dir.file("pairs.jsonl");
  BOOST_TEST(error_of(o).find("document 2 ('p2'): a training example needs an image chunk and a text chunk") !=
             std::string::npos);
  std::ofstream(dir.file("pairs.jsonl"))
      << R"({"id":"p1","tags":{"label":"red"},"chunks":[{"modality":"image","uri":"img/1.png"},{"modality":"text","text":"a red thing"}]})"
      << "\n";
  auto records = load_pairs(o);
  BOOST_REQUIRE(records.size() == 1u);
  BOOST_TEST(records[0].image.uri == (dir.path() / "img" / "1.png").string());
  BOOST_TEST(records[0].caption == "a red thing");
  BOOST_TEST(*records[0].label == "red");
}

BOOST_AUTO_TEST_CASE(a_folder_with_captions_beside_the_images_or_in_a_file) {
  TempDir dir;
  docflow::testing::write_pairs(dir.path(), "x", 2, 9);
  std::ofstream(dir.file("images/x-0.txt")) << "first caption\n";
  PairSourceOptions o;
  o.path = dir.file("images");
  BOOST_TEST(error_of(o).find("x-1.png: no caption (x-1.txt beside it)") != std::string::npos, error_of(o));
  std::ofstream(dir.file("images/x-1.txt")) << "second caption";
  auto records = load_pairs(o);
  BOOST_REQUIRE(records.size() == 2u);
  BOOST_TEST(records[0].caption == "first caption");
  BOOST_TEST(records[1].image.uri == dir.file("images/x-1.png"));

  std::ofstream(dir.file("images/captions.tsv")) << "image\tcaption\nx-1.png\tfrom the file\n";
  o.captions = "captions.tsv";
  records = load_pairs(o);
  BOOST_REQUIRE(records.size() == 1u);
  BOOST_TEST(records[0].caption == "from the file");
  BOOST_TEST(records[0].image.uri == dir.file("images/x-1.png"));
}

BOOST_AUTO_TEST_SUITE_END()
