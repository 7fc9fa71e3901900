#include <boost/test/unit_test.hpp>

#include "docarray/jsonl_io.hpp"
#include "docflow/filter.hpp"

using docarray::Document;
using docarray::Value;

namespace {
docflow::Filter parse(const std::string& yaml_like_json) {
  // Values are built through the JSON reader for brevity.
  Document d = docarray::from_json("{\"tags\": " + yaml_like_json + "}");
  return docflow::Filter::parse(d.tags, docflow::Location{"test", 1, 1});
}
}  // namespace

BOOST_AUTO_TEST_SUITE(filter)

BOOST_AUTO_TEST_CASE(operators_follow_docarray_query_language) {
  Document shirt;
  shirt.modality = "image";
  shirt.text = "a blue shirt";
  shirt.tags["label"] = 6;
  shirt.tags["meta"]["size"] = "L";
  Document boot;
  boot.modality = "text";
  boot.tags["label"] = 9;

  BOOST_TEST(parse(R"({"modality": "image"})").matches(shirt));
  BOOST_TEST(!parse(R"({"modality": "image"})").matches(boot));
  BOOST_TEST(parse(R"({"tags.label": {"$gte": 6, "$lt": 9}})").matches(shirt));
  BOOST_TEST(!parse(R"({"tags.label": {"$gte": 6, "$lt": 9}})").matches(boot));
  BOOST_TEST(parse(R"({"tags__label": {"$in": [1, 6.0]}})").matches(shirt));
  BOOST_TEST(parse(R"({"tags.label": {"$nin": [1, 6]}})").matches(boot));
  BOOST_TEST(parse(R"({"tags.label": {"$neq": 6}})").matches(boot));
  BOOST_TEST(parse(R"({"text": {"$regex": "blue"}})").matches(shirt));
  BOOST_TEST(!parse(R"({"text": {"$regex": "blue"}})").matches(boot));
  BOOST_TEST(parse(R"({"tags.meta.size": "L"})").matches(shirt));
  BOOST_TEST(parse(R"({"tags.meta": {"$exists": false}})").matches(boot));
  BOOST_TEST(parse(R"({"$or": [{"tags.label": 9}, {"modality": "image"}]})").matches(shirt));
  BOOST_TEST(parse(R"({"$or": [{"tags.label": 9}, {"modality": "image"}]})").matches(boot));
  BOOST_TEST(!parse(R"({"$and": [{"tags.label": 9}, {"modality": "image"}]})").matches(boot));
  BOOST_TEST(parse(R"({"$not": {"tags.label": 9}})").matches(shirt));
  BOOST_TEST(!parse(R"({"tags.label": {"$gt": "a"}})").matches(shirt));  // unordered types never match
}

BOOST_AUTO_TEST_CASE(bad_filters_are_config_errors) {
  for (const char* bad : {R"({"tags.x": {"$in": 3}})", R"({"text": {"$regex": "("}})", R"({"$xor": []})",
                          R"({"$or": []})", R"({"tags.x": {"$exists": 1}})"}) {
    BOOST_TEST_CONTEXT(bad) BOOST_CHECK_THROW(parse(bad), docflow::ConfigError);
  }
}

BOOST_AUTO_TEST_SUITE_END()
