#include <boost/test/unit_test.hpp>

#include "docflow/error.hpp"
#include "docflow/params.hpp"

using docarray::Value;
using docflow::ParamSpec;
using docflow::ParamType;

BOOST_AUTO_TEST_SUITE(params)

BOOST_AUTO_TEST_CASE(defaults_types_ranges_and_choices) {
  docflow::ParamSchema schema = {
      ParamSpec{"lr", ParamType::Double, Value(1e-3), "learning rate", 0.0, 1.0, {}},
      ParamSpec{"epochs", ParamType::Int, Value(5), "epochs", 1.0, std::nullopt, {}},
      ParamSpec{"mode", ParamType::String, Value("min"), "mode", std::nullopt, std::nullopt, {"min", "max"}},
      ParamSpec{"path", ParamType::String, std::nullopt, "where", std::nullopt, std::nullopt, {}},
  };
  Value given;
  given["path"] = "x";
  given["lr"] = 1;  // an int where a double is expected is fine
  Value out = docflow::check_params(schema, given, "t");
  BOOST_TEST(out.find("lr")->is_double());
  BOOST_TEST(out.find("epochs")->as_int() == 5);
  BOOST_TEST(out.find("mode")->as_string() == "min");

  auto error_of = [&](Value g) {
    try {
      docflow::check_params(schema, g, "t");
    } catch (const docflow::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Value g = given;
  g["lr"] = 2.0;
  BOOST_TEST(error_of(g) == "executor 't': parameter 'lr' must be at most 1, found double 2.0");
  g = given;
  g["mode"] = "mid";
  BOOST_TEST(error_of(g) == "executor 't': parameter 'mode' must be one of min, max, found string \"mid\"");
  g = given;
  g["epochs"] = 1.5;
  BOOST_TEST(error_of(g) == "executor 't': parameter 'epochs' expects int, found double 1.5");
  BOOST_TEST(error_of(Value::map()) == "executor 't': parameter 'path' (string) is required: where");
  BOOST_TEST(error_of(Value("scalar")) == "executor 't': `with` must be a map of parameters, found string \"scalar\"");
}

BOOST_AUTO_TEST_SUITE_END()
