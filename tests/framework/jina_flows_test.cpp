// Flow files as Jina users write them, and as a fuzzer writes them: what Jina
// accepts is accepted with the same meaning, and hostile YAML (cycles,
// alias bombs, deep nesting, huge scalars, numbers out of range) is refused
// with the line and column at fault, quickly and in bounded memory.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/flow.hpp"

using docflow::parse_flow_text;
using docflow::testing::run_command;
using docflow::testing::TempDir;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The error parse_flow_text gives for `yaml`, or "" when it parses.
std::string error_of(const std::string& yaml, const std::vector<docflow::Override>& overrides = {}) {
  try {
    parse_flow_text(yaml, "f.yml", overrides);
  } catch (const docflow::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(jina_flows)

BOOST_AUTO_TEST_CASE(duplicate_keys_are_refused_naming_both_lines) {
  std::string e = error_of("jtype: Flow\nexecutors:\n  - name: a\n    uses: DocumentReader\n    uses: DocumentWriter\n");
  BOOST_TEST(e == "f.yml:5:5: key 'uses' is given twice in this map (lines 4 and 5); keep one", e);
}

BOOST_AUTO_TEST_CASE(merge_keys_tags_pass_through_and_inline_uses_work_as_in_jina) {
  auto f = parse_flow_text(R"(!Flow
version: '1'
executors:
  - &base
    name: first
    uses: {jtype: Tagger, with: {key: k, value: inline}}
    with: {value: own}
  - <<: *base
    name: second
  - name: nothing_to_do
)",
                           "f.yml");
  BOOST_REQUIRE_EQUAL(f.executors.size(), 3u);
  BOOST_TEST(f.executors[0].uses == "Tagger");
  BOOST_TEST(f.executors[0].with.find("key")->as_string() == "k");
  BOOST_TEST(f.executors[0].with.find("value")->as_string() == "own");  // the executor's `with` wins
  BOOST_TEST(f.executors[1].name == "second");                           // explicit keys beat merged ones
  BOOST_TEST(f.executors[1].uses == "Tagger");
  BOOST_TEST(f.executors[2].uses == "BaseExecutor");                     // Jina's pass-through
  // A pass-through executor really runs, and passes documents on.
  docflow::Flow flow = docflow::Flow::from_config(parse_flow_text(
      "jtype: Flow\nexecutors:\n  - name: a\n  - {name: b, uses: BaseExecutor}\n", "p.yml"));
  flow.open("", nullptr);
  auto out = flow.post("/search", docarray::DocumentArray({docarray::Document("x")}));
  BOOST_TEST(out.size() == 1u);
  flow.close();
}

BOOST_AUTO_TEST_CASE(context_variables_resolve_and_unresolved_ones_are_refused) {
  const std::string yaml =
      "jtype: Flow\nexecutors:\n  - name: w\n    uses: DocumentWriter\n    with: {path: '${{ CONTEXT.OUT }}.jsonl', "
      "compress: '${{ MODE }}'}\n";
  auto f = parse_flow_text(yaml, "f.yml", {{"CONTEXT.OUT=/tmp/x"}, {"CONTEXT.MODE=none"}});
  BOOST_TEST(f.executors[0].with.find("path")->as_string() == "/tmp/x.jsonl");
  BOOST_TEST(f.executors[0].with.find("compress")->as_string() == "none");
  std::string e = error_of(yaml, {{"CONTEXT.MODE=none"}});
  BOOST_TEST(e == "f.yml:5:18: executor 'w': context variable OUT is not set (used as ${{ CONTEXT.OUT }}; give it "
                  "with --set CONTEXT.OUT=VALUE)",
             e);
  BOOST_TEST(contains(error_of("jtype: Flow\nexecutors:\n  - {name: w, uses: X, with: {p: '$DOCFLOW_TEST_NOT_SET_Q'}}\n"),
                      "environment variable DOCFLOW_TEST_NOT_SET_Q is not set"));
  BOOST_TEST(contains(error_of("jtype: Flow\nexecutors:\n  - {name: w, uses: X, with: {p: '${{ what.ever }}'}}\n"),
                      "cannot resolve ${{ what.ever }}"));
  // root references, and `$` left alone in filters and as $$.
  auto r = parse_flow_text(
      "jtype: Flow\nwith: {name: demo}\nexecutors:\n  - {name: w, uses: X, when: {text: {$regex: 'a$b'}}, "
      "with: {p: '${{ root.with.name }}-$$1'}}\n",
      "f.yml");
  BOOST_TEST(r.executors[0].with.find("p")->as_string() == "demo-$1");
}

BOOST_AUTO_TEST_CASE(every_independent_error_is_reported_at_once) {
  std::string e = error_of(R"(jtype: Flow
with: {prefetsh: 2, threads: many}
executors:
  - {name: a, uses: X, replicas: 0, colour: red}
  - {name: b, uses: Y, needs: [], when: {$nope: 1}}
)");
  for (const char* part : {"f.yml:2:8: unknown key 'prefetsh'", "f.yml:2:30: 'threads' expects an integer",
                           "f.yml:4:37: unknown key 'colour' in executor 'a'",
                           "f.yml:4:34: executor 'a': 'replicas' must be at least 1", "f.yml:5:31: executor 'b': `needs` is an empty list",
                           "executor 'b': when:", "(6 errors)"})
    BOOST_TEST(contains(e, part), part << " in\n" << e);
}

BOOST_AUTO_TEST_CASE(an_executor_after_one_that_does_not_parse_is_still_checked) {
  // The first is no map, so there is no executor before the second to `need`
  // by default (the fuzzer found the parser reading past an empty list here).
  const std::string e = error_of("jtype: Flow\nexecutors:\n  - 5\n  - {name: b, uses: Y, colour: red}\n");
  BOOST_TEST(contains(e, "f.yml:3:5: an executor must be a map"), e);
  BOOST_TEST(contains(e, "unknown key 'colour' in executor 'b'"), e);
  BOOST_TEST(contains(e, "(2 errors)"), e);
}

BOOST_AUTO_TEST_CASE(hostile_yaml_is_refused_quickly_with_a_location) {
  auto t0 = std::chrono::steady_clock::now();
  // A cycle: the anchor's own node contains its alias.
  BOOST_TEST(contains(error_of("jtype: Flow\nexecutors: &a [*a]\n"), "refers to a node that contains it"));
  // A billion-node alias bomb in a few hundred bytes.
  std::string bomb = "jtype: Flow\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  bomb += "executors: [*a9]\n";
  BOOST_TEST(contains(error_of(bomb), "YAML nodes (aliases of aliases?)"), error_of(bomb));
  // Deep nesting, flow style and block style.
  BOOST_TEST(contains(error_of("jtype: Flow\nexecutors: " + std::string(100000, '[')), "f.yml:"));
  std::string deep = "jtype: Flow\nexecutors:\n";
  for (int i = 0; i < 200; ++i) deep += std::string(2 + i, ' ') + "- \n";
  BOOST_TEST(contains(error_of(deep), "nested deeper than the depth limit"), error_of(deep));
  // A long plain scalar (std::regex would overflow the stack on it) is just a string.
  std::string huge(2'000'000, 'a');
  BOOST_TEST(parse_flow_text("jtype: Flow\nexecutors:\n  - {name: w, uses: " + huge + "}\n").executors[0].uses == huge);
  // Numbers out of range, and integers that would wrap.
  BOOST_TEST(error_of("jtype: Flow\nexecutors:\n  - {name: w, uses: X, with: {x: 1e999}}\n") ==
             "f.yml:3:34: executor 'w': number 1e999 is out of range for a double (write .inf for infinity)");
  BOOST_TEST(error_of("jtype: Flow\nexecutors:\n  - {name: w, uses: X, with: {x: 99999999999999999999}}\n") ==
             "f.yml:3:34: executor 'w': integer 99999999999999999999 is out of range (-2^63 .. 2^63-1)");
  BOOST_TEST(error_of("jtype: Flow\nexecutors:\n  - {name: w, uses: X, replicas: 4294967297}\n") ==
             "f.yml:3:34: executor 'w': 'replicas' must be at most 1024, found 4294967297");
  // A key that is not a scalar.
  BOOST_TEST(contains(error_of("jtype: Flow\nexecutors:\n  - {[a]: b}\n"), "f.yml:3:6: a map key must be a scalar"));
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)));
}

BOOST_AUTO_TEST_CASE(the_cli_exits_2_on_hostile_flow_files_and_set_values) {
  TempDir dir;
  std::ofstream(dir.file("key.yml")) << "jtype: Flow\nexecutors:\n  - {[a]: b}\n";
  auto r = run_command(std::string(DOCFLOW_FLOW_EXE) + " validate " + dir.file("key.yml"));
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(contains(r.output, "a map key must be a scalar"), r.output);
  std::ofstream(dir.file("ok.yml")) << "jtype: Flow\nexecutors:\n  - {name: w, uses: DocumentWriter, with: {path: o.jsonl}}\n";
  r = run_command(std::string(DOCFLOW_FLOW_EXE) + " validate " + dir.file("ok.yml") + " --set w.path=" +
                  std::string(100000, 'x') + " --set w.compress=1e999");
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(contains(r.output, "--set w.compress=1e999: number 1e999 is out of range"), r.output);
}

BOOST_AUTO_TEST_SUITE_END()
