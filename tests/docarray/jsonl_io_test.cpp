#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "../support/temp_dir.hpp"
#include "docarray/document_file.hpp"
#include "docarray/error.hpp"
#include "docarray/jsonl_io.hpp"
#include "sample_documents.hpp"

using docarray::Document;
using docarray::DocumentArray;
using docflow::testing::TempDir;

namespace {
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string error_of(const std::string& line) {
  try {
    docarray::from_json(line);
  } catch (const docarray::Error& e) {
    return e.what();
  }
  BOOST_FAIL("expected an error for " << line);
  return {};
}
}  // namespace

BOOST_AUTO_TEST_SUITE(jsonl_io)

BOOST_AUTO_TEST_CASE(every_field_round_trips) {
  for (int seed = 0; seed < 4; ++seed) {
    Document d = docflow::testing::full_document(seed);
    d.tensor[0][0][0] = std::numeric_limits<float>::infinity();
    d.tensor[0][0][1] = std::numeric_limits<float>::quiet_NaN();
    std::string line = docarray::to_json(d);
    BOOST_TEST(line.find('\n') == std::string::npos);
    Document back = docarray::from_json(line);
    BOOST_TEST(docarray::equal(d, back));
    BOOST_TEST(docarray::to_json(back) == line);
  }
}

BOOST_AUTO_TEST_CASE(float32_values_read_short_and_exact) {
  Document d("x");
  d.embedding = at::tensor({0.1f, 1.0f / 3.0f, 1e-38f, 3.4028235e38f});
  std::string line = docarray::to_json(d);
  BOOST_TEST(contains(line, R"({"dtype":"float32","shape":[4],"data":[0.1,0.33333334,)"));
  BOOST_TEST(docarray::equal(docarray::from_json(line), d));
  // Many random floats: every one comes back bit for bit.
  Document r("r");
  r.embedding = at::randn({100000}) * at::pow(10.0, at::randint(-30, 30, {100000}));
  BOOST_TEST(docarray::equal(docarray::from_json(docarray::to_json(r)), r));
}

BOOST_AUTO_TEST_CASE(handwritten_lines_use_docarray_names) {
  Document d = docarray::from_json(
      R"({"id": "q1", "text": "a red dress", "tags": {"label": 3, "w": 2.0},)"
      R"( "blob": "aGVsbG8=", "embedding": {"dtype": "float32", "shape": [2, 2], "data": [1, 2, 3, 4]},)"
      R"( "chunks": [{"modality": "image", "uri": "a.png"}], "matches": [{"id": "m", "scores": {"cosine": {"value": 0.5}}}],)"
      R"( "offset": null})");
  BOOST_TEST(d.id == "q1");
  BOOST_TEST(d.tags.find("label")->is_int());
  BOOST_TEST(d.tags.find("w")->is_double());
  BOOST_TEST(d.blob == "hello");
  BOOST_TEST(d.embedding.scalar_type() == at::kFloat);
  BOOST_TEST(d.embedding[1][0].item<float>() == 3.0f);
  BOOST_TEST(d.chunks[0].modality == "image");
  BOOST_TEST(d.chunks.size() == 1u);
  BOOST_TEST(d.matches[0].scores.at("cosine").value == 0.5);
  BOOST_TEST(docarray::from_json(R"({"text": "no id"})").id.size() == 32u);
}

BOOST_AUTO_TEST_CASE(bad_fields_are_named) {
  BOOST_TEST(contains(error_of(R"({"text": 3})"), "field 'text': expected a string, found number"));
  BOOST_TEST(contains(error_of(R"({"colour": "red"})"), "field 'colour': unknown field"));
  BOOST_TEST(contains(error_of(R"({"blob": "!!!!"})"), "field 'blob': invalid base64"));
  BOOST_TEST(contains(error_of(R"({"tensor": {"dtype": "float32", "shape": [3], "data": [1, 2]}})"),
                      "field 'tensor.data': holds 2 values, shape needs 3"));
  BOOST_TEST(contains(error_of(R"({"tensor": {"dtype": "complex", "shape": [1], "data": [1]}})"),
                      "unknown tensor dtype 'complex'"));
  BOOST_TEST(contains(error_of(R"({"tensor": {"dtype": "uint8", "shape": [1], "data": [300]}})"),
                      "out of range for uint8"));
  BOOST_TEST(contains(error_of(R"({"chunks": [{"id": 5}]})"), "chunks[0]: field 'id'"));
  BOOST_TEST(contains(error_of(R"({"text": )"), "invalid JSON"));
  BOOST_TEST(contains(error_of(R"([1, 2])"), "must be a JSON object"));
}

BOOST_AUTO_TEST_CASE(files_name_the_line_at_fault) {
  TempDir dir;
  const std::string path = dir.file("docs.jsonl");
  {
    std::ofstream f(path);
    f << R"({"id": "a"})" << "\n\n" << R"({"id": "b"})" << "\n" << R"({"id": "c", "weight": "heavy"})" << "\n";
  }
  docarray::JsonlReader r(path);
  Document d{std::string()};
  BOOST_TEST(r.next(d));
  BOOST_TEST(r.next(d));
  BOOST_TEST(d.id == "b");
  try {
    r.next(d);
    BOOST_FAIL("expected an error");
  } catch (const docarray::Error& e) {
    BOOST_TEST(contains(e.what(), path + ":4: field 'weight'"));
  }
}

BOOST_AUTO_TEST_CASE(jsonl_and_binary_are_twins) {
  TempDir dir;
  DocumentArray da;
  for (int i = 0; i < 3; ++i) da.append(docflow::testing::full_document(i));
  docarray::save_documents(da, dir.file("a.jsonl"));
  BOOST_TEST((docarray::format_for_path(dir.file("a.jsonl")) == docarray::FileFormat::Jsonl));
  DocumentArray from_jsonl = docarray::load_documents(dir.file("a.jsonl"));
  docarray::save_documents(from_jsonl, dir.file("b.docs"));
  DocumentArray from_binary = docarray::load_documents(dir.file("b.docs"));
  BOOST_TEST(docarray::equal(from_binary, da));
  BOOST_CHECK_THROW(docarray::DocumentFileWriter(dir.file("c.jsonl"), docarray::Compression::Zstd), docarray::Error);
}

BOOST_AUTO_TEST_SUITE_END()
