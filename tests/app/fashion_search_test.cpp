// The search application end to end, as the README takes a user through
// it: a (short) run of the main job, then its two commands, unchanged:
//
//   flow run flows/fashion-index.yml --set CONTEXT.RUN=NAME
//   flow serve flows/fashion-search.yml --set CONTEXT.RUN=NAME
//
// then a text query through the HTTP API and through the page at /ui in
// headless chromium, typed into its box: the top matches for "a pair of
// trousers" must be trousers, shown as their PNG thumbnails. The screenshot
// is kept as Testing/ui-fashion-search.png in the build tree. The search
// flow's Kubernetes export, started as local processes, answers the same.

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/detached_service.hpp"
#include "../support/exported_topology.hpp"
#include "../support/headless_chromium.hpp"
#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "clip/image.hpp"
#include "docflow/client.hpp"

using namespace docflow::testing;

namespace {

const std::string kFlow = DOCFLOW_FLOW_EXE;
const std::string kFlows = std::string(PROJECT_SOURCE_DIR) + "/flows/";
const std::string kVocab = std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
constexpr int kTrousers = 1;

struct DataPresent {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result ok(std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") &&
                                           std::filesystem::exists(kVocab));
    ok.message() << "skipped: needs dataset-fashion-mnist and ../shared/data/clip";
    return ok;
  }
};

std::size_t count_of(const std::vector<int>& labels, int label) {
  return static_cast<std::size_t>(std::count(labels.begin(), labels.end(), label));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fashion_search, *boost::unit_test::precondition(DataPresent()))

BOOST_AUTO_TEST_CASE(the_readme_commands_serve_text_to_image_search_on_the_fine_tuned_model) {
  TempDir dir;
  const std::string in_dir = "cd " + dir.path().string() + " && ";
  // A shorter main job (10,000 examples, two epochs: about a minute here) than scripts/run.sh's.
  auto r = run_command(in_dir + kFlow + " run " + kFlows + "clip-fashion.yml --name job --set reader.limit=10000 " +
                       "--set reader.epochs=2 --set evaluator.limit=200 --set evaluator.gather_examples=0 " +
                       "--set tokenize.vocab=" + kVocab + " --set evaluator.vocab=" + kVocab +
                       " --set checkpointer.vocab=" + kVocab);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);

  r = run_command(in_dir + kFlow + " run " + kFlows + "fashion-index.yml --set CONTEXT.RUN=job");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("closed the index with 10000 documents") != std::string::npos, r.output);
  BOOST_TEST(std::filesystem::exists(dir.path() / "runs/job/index/images.log"));

  auto server_holder = std::make_unique<DetachedService>(in_dir + kFlow + " serve " + kFlows +
                                                            "fashion-search.yml --set CONTEXT.RUN=job --name search --port 0 --detach",
                                                        dir.file("runs/search/status.json"));
  const DetachedService& server = *server_holder;

  // Through the HTTP API, as Jina's Client would ask it.
  {
    docarray::DocumentArray query;
    docarray::Document q;
    q.text = "a pair of trousers";
    query.append(std::move(q));
    docarray::Value parameters;
    parameters["limit"] = 10;
    const docarray::DocumentArray answer = docflow::Client(server.url()).post("/search", query, parameters);
    BOOST_REQUIRE_EQUAL(answer.size(), 1u);
    const auto& matches = answer[0].matches;
    BOOST_REQUIRE_EQUAL(matches.size(), 10u);
    std::vector<int> labels;
    for (const auto& m : matches) {
      labels.push_back(static_cast<int>(m.tags.find("label")->as_int()));
      BOOST_TEST(m.mime_type == "image/png");
      BOOST_TEST(m.blob.rfind("\x89PNG", 0) == 0u);  // the thumbnail
      BOOST_TEST(!m.embedding.defined());          // match_exclude_fields: embedding
      BOOST_TEST(!m.tensor.defined());             // exclude_fields: tensor (never stored)
      BOOST_TEST(m.scores.count("cosine") == 1u);
    }
    BOOST_TEST(labels.front() == kTrousers);
    BOOST_TEST(count_of(labels, kTrousers) >= 7u, "trousers among the top 10: " << count_of(labels, kTrousers));

    // The same search flow as `flow export kubernetes` deploys it (a pod per
    // executor, the gateway at their addresses), started as local processes
    // over a copy of the run's artifact and index (the pods' data volume):
    // the same matches, in the same order, with the same scores.
    r = run_command(in_dir + kFlow + " export kubernetes " + kFlows + "fashion-search.yml k8s --set CONTEXT.RUN=job");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto volume = dir.path() / "volume";
    std::filesystem::create_directories(volume / "runs/job/index");
    std::filesystem::copy(dir.path() / "runs/job/artifact", volume / "runs/job/artifact", std::filesystem::copy_options::recursive);
    std::filesystem::copy_file(dir.path() / "runs/job/index/images.log", volume / "runs/job/index/images.log");
    ExportedTopology cluster(dir.path() / "k8s", volume, dir.path() / "pods");
    BOOST_TEST(cluster.processes() == 4u);  // tokenize, text_encoder, indexer, the gateway
    const docarray::DocumentArray there = docflow::Client(cluster.gateway().url()).post("/search", query, parameters);
    BOOST_REQUIRE_EQUAL(there.size(), 1u);
    BOOST_REQUIRE_EQUAL(there[0].matches.size(), matches.size());
    for (std::size_t i = 0; i < matches.size(); ++i) {
      BOOST_TEST(there[0].matches[i].id == matches[i].id, "match " << i);
      BOOST_TEST(there[0].matches[i].scores.at("cosine").value == matches[i].scores.at("cosine").value,
                 boost::test_tools::tolerance(1e-6));
      BOOST_TEST(there[0].matches[i].blob == matches[i].blob);
    }
  }

  // Through the page, in a real browser: type the query, press Enter.
  if (!HeadlessChromium::installed()) {
    BOOST_TEST_MESSAGE("skipped the browser part: " << HeadlessChromium::kExecutable
                                                    << " is not installed (scripts/setup.sh installs chromium)");
    return;
  }
  HeadlessChromium browser;
  browser.navigate(server.url() + "/ui");
  browser.type_into("#query", "a pair of trousers");
  browser.press_enter();
  BOOST_REQUIRE_MESSAGE(browser.wait_until("document.querySelectorAll('figure.match').length > 0", std::chrono::seconds(20)),
                        browser.evaluate("document.getElementById('status').textContent").dump());
  BOOST_TEST(browser.evaluate("location.search").get<std::string>() == "?q=a%20pair%20of%20trousers");
  const std::string status = browser.evaluate("document.getElementById('status').textContent");
  BOOST_TEST(status.find("12 matches in") == 0u, status);  // the page's default limit
  // Every match is an image that decoded: the 28 x 28 PNG from the index.
  BOOST_TEST(browser.wait_until("Array.from(document.querySelectorAll('figure.match img'))"
                                ".every(i => i.complete && i.naturalWidth === 28)",
                                std::chrono::seconds(5)));
  BOOST_TEST(browser.evaluate("document.querySelectorAll('figure.match img').length") == 12);
  const std::vector<std::string> shown =
      browser.evaluate("Array.from(document.querySelectorAll('figure.match .label')).map(e => e.textContent)");
  BOOST_REQUIRE_EQUAL(shown.size(), 12u);
  BOOST_TEST(shown.front() == "trousers");
  const auto trousers = std::count(shown.begin(), shown.end(), "trousers");
  BOOST_TEST(trousers >= 8, "trousers among the 12 shown: " << trousers);
  const std::string score = browser.evaluate("document.querySelector('figure.match .score').textContent");
  BOOST_TEST(score.rfind("cosine 0.", 0) == 0u, score);

  const std::string shot = std::string(UI_SCREENSHOT_DIR) + "/ui-fashion-search.png";
  std::filesystem::remove(shot);
  browser.screenshot(shot);
  BOOST_TEST(std::filesystem::file_size(shot) > 1000u);
  BOOST_TEST_MESSAGE("screenshot: " << shot);

  // A user's own images into the same index (flows/image-index.yml): refused
  // while the server owns the index, added once it has stopped.
  {
    std::ofstream list(dir.file("images.jsonl"));
    for (int i = 0; i < 3; ++i) {
      clip::Image im{300, 200, std::vector<std::uint8_t>(300 * 200 * 3, static_cast<std::uint8_t>(60 * i))};
      std::ofstream(dir.file("photo" + std::to_string(i) + ".png"), std::ios::binary) << clip::encode_png(im);
      list << "{\"uri\": \"photo" << i << ".png\", \"tags\": {\"label_name\": \"photo " << i << "\"}}\n";
    }
    std::ofstream(dir.file("broken.png")) << "not an image";
    list << "{\"uri\": \"broken.png\"}\n";
  }
  const std::string index_mine = in_dir + kFlow + " run " + kFlows +
                                 "image-index.yml --set CONTEXT.RUN=job --set reader.path=images.jsonl "
                                 "--set preprocess.image_size=32";
  r = run_command(index_mine);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("runs/job/index/images.log is open in another process") != std::string::npos, r.output);
  server_holder.reset();
  r = run_command(index_mine);
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("skipping a document: ") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("closed the index with 10003 documents") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
