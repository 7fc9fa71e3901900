// Network messages (docarray/envelope.hpp): both encodings round-trip every
// field, and hostile bytes give errors that say where.
#include <boost/test/unit_test.hpp>

#include <ATen/ATen.h>

#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docarray/jsonl_io.hpp"
#include "sample_documents.hpp"

using namespace docarray;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

Value sample_fields() {
  Value f = Value::map();
  f["exec_endpoint"] = "/search";
  f["parameters"]["limit"] = 3;
  f["parameters"]["ratio"] = 1.0;
  f["target_executor"] = "enc.*";
  return f;
}

DocumentArray sample_docs() {
  DocumentArray docs;
  for (int i = 0; i < 3; ++i) docs.append(docflow::testing::full_document(i));
  return docs;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(envelope)

BOOST_AUTO_TEST_CASE(json_round_trip_keeps_fields_and_documents) {
  const DocumentArray docs = sample_docs();
  const std::string text = to_json_envelope(sample_fields(), docs);
  Envelope env = parse_json_envelope(text);
  BOOST_TEST(env.fields.dump() == sample_fields().dump());
  BOOST_TEST((env.fields == sample_fields()));
  BOOST_REQUIRE_EQUAL(env.docs.size(), docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) BOOST_TEST(to_json(env.docs[i]) == to_json(docs[i]));
}

BOOST_AUTO_TEST_CASE(msgpack_round_trip_keeps_fields_and_tensor_bytes) {
  const DocumentArray docs = sample_docs();
  Envelope env = parse_msgpack_envelope(to_msgpack_envelope(sample_fields(), docs));
  BOOST_TEST(env.fields.dump() == sample_fields().dump());
  BOOST_TEST((env.fields == sample_fields()));
  BOOST_REQUIRE_EQUAL(env.docs.size(), docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    BOOST_TEST(to_json(env.docs[i]) == to_json(docs[i]));
    BOOST_TEST(at::equal(env.docs[i].tensor, docs[i].tensor));
    BOOST_TEST((env.docs[i].embedding.scalar_type() == docs[i].embedding.scalar_type()));
  }
}

// Small tensors (8 to 20 floats, 32-80 bytes) that must be made contiguous
// first, so that the copy packed is the only one, behind pieces that fill
// the packer's 512-byte stage at every offset: every payload is copied or
// kept, never referenced after its tensor is gone (ASan would see it).
BOOST_AUTO_TEST_CASE(msgpack_keeps_small_converted_tensors_whole) {
  DocumentArray docs;
  for (int i = 0; i < 64; ++i) {
    Document d("doc-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 40), 'x'));
    const std::int64_t n = 8 + i % 13;
    d.embedding = at::arange(2 * n, at::kFloat).reshape({2, n}).t().select(1, 0);  // strided: packed from a copy
    d.tensor = at::arange(n, at::kDouble).expand({2, n}).t();
    d.tags = Value::map();
    d.tags["note"] = std::string(static_cast<std::size_t>(i * 7 % 60), 'n');
    docs.append(std::move(d));
  }
  Envelope env = parse_msgpack_envelope(to_msgpack_envelope(sample_fields(), docs));
  BOOST_REQUIRE_EQUAL(env.docs.size(), docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    BOOST_TEST(env.docs[i].id == docs[i].id);
    BOOST_TEST(at::equal(env.docs[i].embedding, docs[i].embedding.contiguous()));
    BOOST_TEST(at::equal(env.docs[i].tensor, docs[i].tensor.contiguous()));
    BOOST_TEST((env.docs[i].tags == docs[i].tags));
  }
}

BOOST_AUTO_TEST_CASE(json_data_may_be_a_list_or_docarray_docs_or_absent) {
  BOOST_TEST(parse_json_envelope(R"({"data": [{"text": "a"}, {"text": "b"}]})").docs.size() == 2u);
  BOOST_TEST(parse_json_envelope(R"({"data": {"docs": [{"text": "a"}]}})").docs[0].text == "a");
  Envelope none = parse_json_envelope(R"({"parameters": {"x": 1}})");
  BOOST_TEST(none.docs.empty());
  BOOST_TEST(none.fields.find("parameters")->find("x")->as_int() == 1);
  BOOST_TEST(parse_json_envelope(R"({"data": null})").docs.empty());
}

BOOST_AUTO_TEST_CASE(json_errors_say_where) {
  BOOST_TEST(error_of([] { parse_json_envelope("{\"data\": [1,"); }).find("invalid JSON at byte 13") != std::string::npos,
             error_of([] { parse_json_envelope("{\"data\": [1,"); }));
  const std::string bad_doc = error_of([] { parse_json_envelope(R"({"data": [{"text": "a"}, {"embedding": "x"}]})"); });
  BOOST_TEST(bad_doc.find("data[1]") != std::string::npos, bad_doc);
  BOOST_TEST(bad_doc.find("embedding") != std::string::npos, bad_doc);
  BOOST_TEST(error_of([] { parse_json_envelope("[1]"); }).find("must be a JSON object") != std::string::npos);
  BOOST_TEST(error_of([] { parse_json_envelope(R"({"data": {"other": []}})"); }).find("docs") != std::string::npos);
  std::string deep(100000, '[');
  BOOST_TEST(error_of([&] { parse_json_envelope("{\"parameters\": " + deep); }).find("nested deeper") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(msgpack_errors_say_where) {
  const std::string good = to_msgpack_envelope(sample_fields(), sample_docs());
  for (std::size_t cut : {std::size_t(1), good.size() / 2, good.size() - 1})
    BOOST_TEST(error_of([&] { parse_msgpack_envelope(good.substr(0, cut)); }) != "<no error>", "cut at " << cut);
  BOOST_TEST(error_of([&] { parse_msgpack_envelope(good + "x"); }).find("follow the message") != std::string::npos);
  BOOST_TEST(error_of([] { parse_msgpack_envelope(std::string("\x93\x01\x02\x03", 4)); }).find("must be a msgpack map") !=
             std::string::npos);
  // {"data": [{"id": 7}]}: an id that is not a string, in document 0.
  const std::string wrong_id("\x81\xa4" "data" "\x91\x81\xa2" "id" "\x07", 12);
  const std::string e = error_of([&] { parse_msgpack_envelope(wrong_id); });
  BOOST_TEST(e.find("data[0]") != std::string::npos, e);
  // An array that declares four billion elements in a few bytes allocates nothing.
  const std::string huge("\x81\xa4" "data" "\xdd\xff\xff\xff\xff", 11);
  BOOST_TEST(error_of([&] { parse_msgpack_envelope(huge); }) != "<no error>");
}

BOOST_AUTO_TEST_SUITE_END()
