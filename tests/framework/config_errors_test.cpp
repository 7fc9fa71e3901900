// The corpus of bad flow files: each must fail validation with this exact
// message, naming the file, line and column.
#include <boost/test/unit_test.hpp>

#include <string>

#include "docflow/flow.hpp"
#include "../support/in_tree_plugins.hpp"

namespace {

// "clip, index, io": the in-tree plugins as the error message lists them.
std::string in_tree_plugins() {
  std::string joined;
  for (const auto& n : docflow::testing::in_tree_plugins(IO_PLUGIN_DIR)) joined += (joined.empty() ? "" : ", ") + n;
  return joined;
}

struct Case {
  const char* file;
  const char* message;  // after "FILE:"
};

const Case kCases[] = {
    {"unknown_key.yml",
     "4:5: unknown key 'usess' in executor 'reader' (did you mean 'uses'?); known keys: name, uses, with, uses_with, "
     "needs, replicas, when, env, host, port, hosts, external, timeout_ready, timeout_send, shards, polling, resources, isolate, restarts, token_file"},
    {"unknown_flow_key.yml",
     "3:3: unknown key 'prefetsh' in the flow's `with` (did you mean 'prefetch'?); known keys: name, workspace, "
     "prefetch, plugins, threads, checkpoints, protocol, host, port, port_expose, cors, timeout_send, timeout_ready, "
     "monitoring, port_monitoring"},
    {"wrong_type.yml", "7:7: executor 'reader': parameter 'batch_size' expects int, found string \"many\""},
    {"out_of_range.yml", "7:7: executor 'reader': parameter 'epochs' must be at least 1, found int 0"},
    {"unknown_param.yml",
     "7:7: executor 'reader': unknown parameter 'batchsize' (did you mean 'batch_size'?); its parameters are: path, "
     "batch_size, epochs, shuffle, seed, limit, endpoint"},
    {"missing_required.yml",
     "6:7: executor 'writer': parameter 'path' (string) is required: the output file: .jsonl for JSON Lines, "
     "anything else binary"},
    {"bad_choice.yml", "7:7: executor 'writer': parameter 'compress' must be one of none, zstd, found string \"gzip\""},
    {"cycle.yml", "6:12: the flow has a cycle: a -> b -> c -> a"},
    {"unknown_needs.yml",
     "9:12: executor 'writer' needs 'readr', which is not an executor of this flow (did you mean 'reader'?)"},
    {"bad_when.yml", "7:7: executor 'writer': when: unknown operator '$gtt' on field 'tags.label' (did you mean '$gt'?)"},
    {"bad_when_field.yml",
     "6:11: executor 'writer': when: unknown field 'modalty' (did you mean 'modality'?); fields are id, parent_id, text, uri, "
     "mime_type, modality, granularity, adjacency, weight, tags.NAME"},
    {"bad_yaml.yml", "5:1: invalid YAML: end of sequence flow not found"},
    {"not_a_flow.yml", "1:8: `jtype` must be Flow, found Executor"},
    {"unset_env.yml",
     "6:13: executor 'reader': environment variable DOCFLOW_TEST_SURELY_UNSET is not set (used as ${{ ENV.DOCFLOW_TEST_SURELY_UNSET }})"},
    {"source_not_first.yml", "6:5: executor 'reader' is a source: it must be first (needs: gateway)"},
    {"duplicate_name.yml", "6:5: executor name 'w' is used twice"},
    {"bad_replicas.yml", "6:15: executor 'w': 'replicas' must be at least 1, found 0"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(config_errors)

BOOST_AUTO_TEST_CASE(every_bad_flow_names_file_line_column) {
  for (const Case& c : kCases) {
    const std::string path = std::string(TEST_FLOWS_DIR) + "/bad/" + c.file;
    BOOST_TEST_CONTEXT(c.file) {
      try {
        docflow::Flow::load(path);
        BOOST_ERROR("expected a ConfigError");
      } catch (const docflow::ConfigError& e) {
        BOOST_TEST(std::string(e.what()) == path + ":" + c.message);
        BOOST_TEST(e.where().file == path);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(unknown_executor_lists_plugins_and_search_path) {
  const std::string path = std::string(TEST_FLOWS_DIR) + "/bad/unknown_executor.yml";
  try {
    docflow::Flow::load(path);
    BOOST_FAIL("expected a ConfigError");
  } catch (const docflow::ConfigError& e) {
    std::string msg = e.what();
    BOOST_TEST(msg.rfind(path + ":4:11: executor 'reader': unknown executor 'DocumentReder' (did you mean "
                                "'DocumentReader'?); plugins loaded: " + in_tree_plugins() + "; searched: ",
                         0) == 0,
               msg);
    BOOST_TEST(msg.find(IO_PLUGIN_DIR) != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(missing_plugin_points_at_plugins_key) {
  const std::string path = std::string(TEST_FLOWS_DIR) + "/bad/missing_plugin.yml";
  try {
    docflow::Flow::load(path);
    BOOST_FAIL("expected a ConfigError");
  } catch (const docflow::ConfigError& e) {
    BOOST_TEST(std::string(e.what()) ==
               path + ":3:12: plugin path '" + TEST_FLOWS_DIR + "/bad/no-such-plugins' does not exist");
  }
}

BOOST_AUTO_TEST_CASE(overrides_and_environment) {
  const std::string path = std::string(TEST_FLOWS_DIR) + "/bad/out_of_range.yml";
  // --set repairs the bad value; a bad --set names itself.
  docflow::Flow ok = docflow::Flow::load(path, {{"reader.epochs=2"}});
  BOOST_TEST(ok.config().executors[0].with.find("epochs")->as_int() == 2);
  BOOST_CHECK_NO_THROW(docflow::Flow::load(path, {{"executors.reader.with.epochs=3"}}));
  try {
    docflow::Flow::load(path, {{"raeder.epochs=2"}});
    BOOST_FAIL("expected a ConfigError");
  } catch (const docflow::ConfigError& e) {
    BOOST_TEST(std::string(e.what()) == "--set raeder.epochs=2: no executor named 'raeder' (did you mean 'reader'?)");
  }
  try {
    docflow::Flow::load(path, {{"reader.epochs=-1"}});
    BOOST_FAIL("expected a ConfigError");
  } catch (const docflow::ConfigError& e) {
    BOOST_TEST(std::string(e.what()) ==
               "--set reader.epochs=-1: executor 'reader': parameter 'epochs' must be at least 1, found int -1");
  }
  ::setenv("DOCFLOW_TEST_SURELY_UNSET", "data.jsonl", 1);
  docflow::Flow env = docflow::Flow::load(std::string(TEST_FLOWS_DIR) + "/bad/unset_env.yml");
  BOOST_TEST(env.config().executors[0].with.find("path")->as_string() == "data.jsonl");
  ::unsetenv("DOCFLOW_TEST_SURELY_UNSET");
}

BOOST_AUTO_TEST_SUITE_END()
