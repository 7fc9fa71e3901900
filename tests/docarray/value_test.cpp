#include <boost/test/unit_test.hpp>

#include "docarray/error.hpp"
#include "docarray/value.hpp"

using docarray::Value;

BOOST_AUTO_TEST_SUITE(value)

BOOST_AUTO_TEST_CASE(keeps_ints_and_doubles_apart) {
  Value i = 1, d = 1.0;
  BOOST_TEST(i.is_int());
  BOOST_TEST(d.is_double());
  BOOST_TEST((i != d));
  BOOST_TEST(i.as_double() == 1.0);
  BOOST_CHECK_THROW(d.as_int(), docarray::Error);
}

BOOST_AUTO_TEST_CASE(map_keeps_insertion_order_and_erases) {
  Value m;
  m["z"] = 1;
  m["a"] = "x";
  m["m"] = Value::list({1, 2});
  BOOST_TEST(m.is_map());
  BOOST_TEST(m.size() == 3u);
  BOOST_TEST(m.as_map()[0].first == "z");
  BOOST_TEST(m.as_map()[2].first == "m");
  BOOST_TEST(m.dump() == R"({"z":1,"a":"x","m":[1,2]})");
  BOOST_TEST(m.erase("a"));
  BOOST_TEST(!m.contains("a"));
  BOOST_TEST(!m.erase("a"));
}

BOOST_AUTO_TEST_CASE(wrong_type_names_both_types) {
  Value s = "text";
  try {
    s.as_int();
    BOOST_FAIL("expected an error");
  } catch (const docarray::Error& e) {
    BOOST_TEST(std::string(e.what()).find("string, expected a int") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
