// `flow docs show|convert` run as a user runs them.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docarray/document_file.hpp"
#include "sample_documents.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;

namespace {
const std::string kFlow = DOCFLOW_FLOW_EXE;
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(docs_cli)

BOOST_AUTO_TEST_CASE(convert_and_show_both_ways) {
  TempDir dir;
  docarray::DocumentArray da;
  for (int i = 0; i < 12; ++i) da.append(docflow::testing::full_document(i));
  docarray::save_documents(da, dir.file("in.jsonl"));

  auto r = run_command(kFlow + " docs convert " + dir.file("in.jsonl") + " " + dir.file("out.docs") + " --compress zstd");
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "converted 12 documents"));
  r = run_command(kFlow + " docs convert " + dir.file("out.docs") + " " + dir.file("back.jsonl"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(docarray::equal(docarray::load_documents(dir.file("back.jsonl")), da));

  r = run_command(kFlow + " docs show " + dir.file("out.docs"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "(binary): 12 documents"));
  BOOST_TEST(contains(r.output, da[0].id + " [image] text=\"a photo of a pullover"));
  BOOST_TEST(!contains(r.output, da[10].id));  // --limit defaults to 10
  BOOST_TEST(contains(r.output, "tensor float32[3, 4, 2]: 12"));

  r = run_command(kFlow + " docs show " + dir.file("out.docs") + " --json --limit 2");
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output == docarray::to_json(da[0]) + "\n" + docarray::to_json(da[1]) + "\n");
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2_with_a_message) {
  TempDir dir;
  {
    std::ofstream f(dir.file("bad.jsonl"));
    f << R"({"id": "a"})" << "\n" << R"({"id": "b", "granularity": "x"})" << "\n";
  }
  auto r = run_command(kFlow + " docs show " + dir.file("bad.jsonl"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, dir.file("bad.jsonl") + ":2: field 'granularity'"), r.output);

  r = run_command(kFlow + " docs show " + dir.file("missing.docs"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "not found"));

  r = run_command(kFlow + " docs convert only-one-arg");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "needs IN and OUT"));

  r = run_command(kFlow + " docs frobnicate");
  BOOST_TEST(r.exit_code == 2);
  r = run_command(kFlow + " docs show --help");
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.output, "--limit"));
}

BOOST_AUTO_TEST_SUITE_END()
