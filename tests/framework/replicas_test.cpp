// Replicas lose and duplicate nothing: stateless executors spread requests
// over instances and keep the order; executors with state across requests
// (a file they write, ...) refuse replicas at validation, as do two
// executors writing one file.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>
#include <vector>

#include "../support/in_tree_plugins.hpp"
#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docarray/document_file.hpp"
#include "docflow/plugin_registry.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// 100 documents in a JSON Lines file, ids doc-0 .. doc-99.
std::string write_input(const TempDir& dir) {
  std::string path = dir.file("in.jsonl");
  std::ofstream out(path);
  for (int i = 0; i < 100; ++i) out << "{\"id\": \"doc-" << i << "\", \"text\": \"t" << i << "\"}\n";
  return path;
}

std::string write_flow(const TempDir& dir, const std::string& executors) {
  std::string path = dir.file("flow.yml");
  std::ofstream(path) << "jtype: Flow\nwith:\n  workspace: " << dir.file("runs") << "\n  plugins: [" TEST_PLUGIN_DIR
                      << "]\nexecutors:\n  - {name: reader, uses: DocumentReader, with: {path: "
                      << write_input(dir) << ", batch_size: 3}}\n"
                      << executors;
  return path;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replicas)

BOOST_AUTO_TEST_CASE(a_writer_with_replicas_is_refused_naming_it_and_the_line) {
  TempDir dir;
  std::string flow = write_flow(dir, "  - name: texts\n    uses: DocumentWriter\n    replicas: 2\n    with: {path: " +
                                         dir.file("out.jsonl") + "}\n");
  auto r = run_command(std::string(DOCFLOW_FLOW_EXE) + " run " + flow);
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(contains(r.output, flow + ":9:15: executor 'texts' (DocumentWriter) keeps state across requests"),
             r.output);
  BOOST_TEST(contains(r.output, "cannot have replicas (found replicas: 2)"), r.output);
  BOOST_TEST(!std::filesystem::exists(dir.file("out.jsonl")));
}

BOOST_AUTO_TEST_CASE(two_writers_of_one_file_are_refused) {
  TempDir dir;
  std::string out = dir.file("out.jsonl");
  std::string flow = write_flow(dir, "  - {name: a, uses: DocumentWriter, with: {path: " + out +
                                         "}}\n  - {name: b, uses: DocumentWriter, needs: reader, with: {path: " +
                                         out + "}}\n");
  auto r = run_command(std::string(DOCFLOW_FLOW_EXE) + " validate " + flow);
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(contains(r.output, "executors 'a' and 'b' both write " + out), r.output);
}

BOOST_AUTO_TEST_CASE(stateless_replicas_pass_every_document_once_in_order) {
  TempDir dir;
  std::string out = dir.file("out.docs");
  std::string flow = write_flow(dir, "  - {name: tag, uses: Tagger, replicas: 3, with: {key: k, value: v}}\n"
                                     "  - {name: slow, uses: Sleeper, replicas: 2, with: {max_ms: 2}}\n"
                                     "  - {name: writer, uses: DocumentWriter, with: {path: " +
                                         out + "}}\n");
  auto r = run_command(std::string(DOCFLOW_FLOW_EXE) + " run " + flow);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  auto docs = docarray::load_documents(out);
  BOOST_REQUIRE_EQUAL(docs.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    BOOST_TEST(docs[i].id == "doc-" + std::to_string(i));
    BOOST_TEST(docs[i].find_tag("k")->as_string() == "v");
  }
  BOOST_TEST(contains(r.output, "wrote 100 documents"), r.output);
}

// Every built-in executor has decided: it refuses replicas, or a test runs it
// with replicas and checks that each document comes out once (here and in
// the clip suite's replicated flow). A new built-in executor fails this test
// until its author decides.
BOOST_AUTO_TEST_CASE(every_built_in_executor_refuses_replicas_or_is_tested_with_them) {
  docflow::PluginRegistry registry;
  registry.load({IO_PLUGIN_DIR});
  const std::set<std::string> replicated_in_tests = {"ClipImagePreprocessor", "ClipTokenizer", "ClipImageEncoder",
                                                     "ClipTextEncoder"};
  std::set<std::string> seen, plugins;
  for (const auto& e : registry.executors()) {
    seen.insert(e.name);
    plugins.insert(e.plugin->name);
    BOOST_TEST((e.single_instance || replicated_in_tests.count(e.name)),
               e.plugin->name + "/" + e.name + " neither refuses replicas nor is tested with them");
  }
  // Not vacuous: every plugin the build put in the folder was loaded and its
  // executors checked (a build of only some targets, as the sanitizer
  // stage's, has fewer plugins than the full one).
  const auto files = docflow::testing::in_tree_plugins(IO_PLUGIN_DIR);
  BOOST_TEST(std::vector<std::string>(plugins.begin(), plugins.end()) == files, boost::test_tools::per_element());
  BOOST_TEST(seen.count("DocumentReader") == 1u);
  BOOST_TEST(seen.count("DocumentWriter") == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
