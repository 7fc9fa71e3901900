#include <boost/test/unit_test.hpp>

#include "docflow/error.hpp"
#include "docflow/plugin_registry.hpp"

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(plugins)

BOOST_AUTO_TEST_CASE(gate_refuses_other_abi_major_naming_both_sides) {
  docflow::PluginRegistry registry;
  const std::string path = std::string(BAD_PLUGIN_DIR) + "/docflow_plugin_abi_major.so";
  try {
    registry.load_file(path);
    BOOST_FAIL("expected a PluginError");
  } catch (const docflow::PluginError& e) {
    std::string msg = e.what();
    BOOST_TEST(contains(msg, "plugin " + path + " was built for ABI 99.0"), msg);
    BOOST_TEST(contains(msg, "this docflow has ABI " + std::to_string(DOCFLOW_ABI_MAJOR) + ".0, build id '" DOCFLOW_BUILD_ID "'"), msg);
    BOOST_TEST(contains(msg, "the major versions differ"), msg);
  }
  BOOST_TEST(registry.executors().empty());
}

BOOST_AUTO_TEST_CASE(gate_refuses_other_build_id) {
  docflow::PluginRegistry registry;
  const std::string path = std::string(BAD_PLUGIN_DIR) + "/docflow_plugin_abi_build.so";
  try {
    registry.load_file(path);
    BOOST_FAIL("expected a PluginError");
  } catch (const docflow::PluginError& e) {
    BOOST_TEST(contains(e.what(), "build id 'gcc-1 cxx11abi=0 torch-0.1'"), e.what());
    BOOST_TEST(contains(e.what(), "compiler, C++ ABI or LibTorch differ"), e.what());
  }
}

BOOST_AUTO_TEST_CASE(scanned_folders_record_refusals_and_unknown_names_explain) {
  docflow::PluginRegistry registry;
  registry.load({BAD_PLUGIN_DIR, TEST_PLUGIN_DIR});
  BOOST_TEST(registry.refused().size() == 2u);
  BOOST_TEST(registry.plugins().size() == 1u);
  BOOST_TEST(registry.find("Tagger").plugin->name == "testing");
  BOOST_TEST(registry.find("testing/Tagger").name == "Tagger");
  try {
    registry.find("Taggr");
    BOOST_FAIL("expected a PluginError");
  } catch (const docflow::PluginError& e) {
    std::string msg = e.what();
    BOOST_TEST(contains(msg, "unknown executor 'Taggr' (did you mean 'Tagger'?)"), msg);
    BOOST_TEST(contains(msg, "plugins loaded: testing"), msg);
    BOOST_TEST(contains(msg, std::string("searched: ") + BAD_PLUGIN_DIR + ", " + TEST_PLUGIN_DIR), msg);
    BOOST_TEST(contains(msg, "refused plugin"), msg);
  }
  const auto& counter = registry.find("Counter");
  BOOST_TEST(counter.is_source);
  BOOST_TEST(counter.schema.size() == 4u);
  BOOST_TEST(counter.schema[0].minimum.value() == 0.0);
}

BOOST_AUTO_TEST_CASE(executors_keep_their_library_alive) {
  std::shared_ptr<docflow::Executor> tagger;
  {
    docflow::PluginRegistry registry;
    registry.load({TEST_PLUGIN_DIR});
    docflow::ExecutorContext ctx;
    ctx.name = "t";
    ctx.params = docflow::Params(docflow::check_params(registry.find("Tagger").schema, {}, "t"));
    tagger = registry.create("Tagger", ctx);
  }
  // The registry is gone; the object's deleter still holds the library.
  docflow::Request r{"/x", docarray::DocumentArray({docarray::Document("d")}), {}};
  tagger->handle(r);
  BOOST_TEST(r.docs[0].find_tag("seen")->as_bool());
  tagger.reset();
}

BOOST_AUTO_TEST_SUITE_END()
