// Training checkpoints: the store's atomicity under SIGKILL, pruning, and
// `flow run --resume` through the CLI with a source that saves its position.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docflow/checkpoint.hpp"

using docflow::testing::run_command;
using docflow::testing::TempDir;
namespace fs = std::filesystem;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A checkpoint whose one file is `bytes` copies of the epoch's number.
void write_checkpoint(docflow::CheckpointStore& store, int epoch, std::size_t bytes) {
  const fs::path dir = store.begin(epoch);
  fs::create_directories(dir / "executors" / "x");
  std::ofstream(dir / "executors" / "x" / "payload", std::ios::binary) << std::string(bytes, static_cast<char>('a' + epoch % 26));
}

// The file is whole and holds its own epoch's byte only.
bool payload_is_whole(const docflow::Checkpoint& c, std::size_t bytes) {
  std::ifstream in(c.executor_dir("x") / "payload", std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return data.size() == bytes && data.find_first_not_of(static_cast<char>('a' + c.epoch % 26)) == std::string::npos;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoints)

BOOST_AUTO_TEST_CASE(the_store_keeps_the_newest_k_and_latest_names_the_last_commit) {
  TempDir dir;
  docflow::CheckpointStore store(dir.path() / "checkpoints", 2);
  BOOST_TEST(!store.latest().has_value());
  for (int e = 0; e < 4; ++e) {
    write_checkpoint(store, e, 100);
    store.commit(e, {{"metrics.jsonl", 10u * static_cast<unsigned>(e)}});
  }
  auto latest = store.latest();
  BOOST_REQUIRE(latest.has_value());
  BOOST_TEST(latest->epoch == 3);
  BOOST_TEST(latest->run_files.at("metrics.jsonl") == 30u);
  BOOST_TEST(payload_is_whole(*latest, 100));
  BOOST_TEST(!fs::exists(dir.path() / "checkpoints" / "epoch-0001"));
  BOOST_TEST(fs::exists(dir.path() / "checkpoints" / "epoch-0002"));
}

BOOST_AUTO_TEST_CASE(a_kill_at_any_moment_leaves_the_previous_checkpoint_whole) {
  constexpr std::size_t kBytes = 8 << 20;  // long enough that kills land inside writes
  std::mt19937 rng(std::random_device{}());
  int found = 0;
  for (int trial = 0; trial < 6; ++trial) {
    TempDir dir;
    const fs::path where = dir.path() / "checkpoints";
    const pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      // The child writes checkpoints until it is killed; only file I/O here.
      docflow::CheckpointStore store(where, 1);
      for (int e = 0;; ++e) {
        write_checkpoint(store, e, kBytes);
        store.commit(e, {});
      }
    }
    // The last trial waits long enough for several commits on any disk.
    const int delay_ms = trial == 5 ? 3000 : std::uniform_int_distribution<int>(50, 800)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    BOOST_TEST_MESSAGE("killed after " << delay_ms << " ms");
    docflow::CheckpointStore store(where, 1);
    auto latest = store.latest();
    if (!latest) {  // killed before the first commit: then nothing claims to be complete
      BOOST_TEST(!fs::exists(where / "LATEST"));
      continue;
    }
    ++found;
    BOOST_TEST_MESSAGE("  the latest complete checkpoint is epoch " << latest->epoch);
    BOOST_TEST(payload_is_whole(*latest, kBytes), "checkpoint " << latest->path << " after a kill at " << delay_ms << " ms");
  }
  BOOST_TEST(found > 0, "no trial got as far as one commit: the test checked nothing");
}

namespace {
// Counter (3 epochs of 2 requests) into a Failer that fails on its 5th
// request: the first run dies in epoch 3; resumed, the Failer counts afresh.
std::string write_failing_flow(const TempDir& dir, int checkpoints) {
  std::string path = dir.file("flow.yml");
  std::ofstream(path) << "jtype: Flow\nwith:\n  name: resume\n  workspace: " << dir.file("runs")
                      << "\n  checkpoints: " << checkpoints << "\n  plugins: [" TEST_PLUGIN_DIR "]\nexecutors:\n"
                      << "  - {name: source, uses: Counter, with: {n: 10, batch_size: 5, epochs: 3}}\n"
                      << "  - {name: fail, uses: Failer, with: {after: 5, message: power cut}}\n";
  return path;
}
std::string in(const TempDir& dir, const std::string& command) {
  return "cd " + dir.path().string() + " && " DOCFLOW_FLOW_EXE " " + command;
}
}  // namespace

BOOST_AUTO_TEST_CASE(resume_continues_a_failed_run_after_its_last_checkpoint) {
  TempDir dir;
  const std::string flow = write_failing_flow(dir, 2);
  auto r = run_command(in(dir, "run " + flow + " --name r"));
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(contains(r.output, "power cut"), r.output);
  BOOST_TEST(contains(r.output, "training checkpoint after epoch 2"), r.output);

  r = run_command(in(dir, "run " + flow + " --resume r"));
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "resumed from the training checkpoint after epoch 2"), r.output);
  // Only the third epoch is left: 2 requests, 10 documents.
  BOOST_TEST(contains(r.output, "finished: 2 requests, 10 documents, 1 epoch(s)"), r.output);
  BOOST_TEST(!fs::exists(dir.path() / "runs" / "r" / "checkpoints" / "epoch-0000"));  // checkpoints: 2 keeps two

  r = run_command(in(dir, "run " + flow + " --resume r"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "run 'r' has finished; there is nothing to resume"), r.output);
}

BOOST_AUTO_TEST_CASE(resume_refuses_a_changed_flow_a_missing_checkpoint_and_an_unknown_run) {
  TempDir dir;
  std::string flow = write_failing_flow(dir, 1);
  auto r = run_command(in(dir, "run " + flow + " --name r"));
  BOOST_TEST(r.exit_code == 1, r.output);

  r = run_command(in(dir, "run " + flow + " --resume r --set fail.message=other"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "the flow differs from the one run 'r' started with"), r.output);
  BOOST_TEST(contains(r.output, "now '      message: \"other\"'"), r.output);

  r = run_command(in(dir, "run " + flow + " --resume nosuch"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "no run named 'nosuch'"), r.output);

  flow = write_failing_flow(dir, 0);
  r = run_command(in(dir, "run " + flow + " --name none"));
  BOOST_TEST(r.exit_code == 1, r.output);
  r = run_command(in(dir, "run " + flow + " --resume none"));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.output, "run 'none' has no training checkpoint yet"), r.output);
}

BOOST_AUTO_TEST_CASE(a_resumed_document_reader_shuffles_the_next_epoch_as_an_uninterrupted_one) {
  TempDir dir;
  {
    std::ofstream docs(dir.file("in.jsonl"));
    for (int i = 0; i < 10; ++i) docs << "{\"id\":\"d" << i << "\"}\n";
  }
  auto flow = [&](const std::string& name, const std::string& middle) {
    std::string path = dir.file(name + ".yml");
    std::ofstream(path) << "jtype: Flow\nwith:\n  name: " << name << "\n  workspace: " << dir.file("runs")
                        << "\n  checkpoints: 1\n  plugins: [" TEST_PLUGIN_DIR ", " IO_PLUGIN_DIR "]\nexecutors:\n"
                        << "  - {name: reader, uses: DocumentReader, with: {path: " << dir.file("in.jsonl")
                        << ", batch_size: 5, epochs: 3, shuffle: true, seed: 7}}\n"
                        << middle << "  - {name: writer, uses: DocumentWriter, with: {path: " << dir.file(name + ".jsonl") << "}}\n";
    return path;
  };
  auto ids = [&](const std::string& file) {
    std::vector<std::string> out;
    std::ifstream in(dir.file(file));
    for (std::string line; std::getline(in, line);) out.push_back(line.substr(0, line.find(',')));
    return out;
  };
  auto r = run_command(in(dir, "run " + flow("whole", "") + " --name whole"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string failing = flow("crash", "  - {name: fail, uses: Failer, with: {after: 5, message: power cut}}\n");
  r = run_command(in(dir, "run " + failing + " --name crash"));
  BOOST_TEST(r.exit_code == 1, r.output);
  r = run_command(in(dir, "run " + failing + " --resume crash"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const auto whole = ids("whole.jsonl"), resumed = ids("crash.jsonl");
  BOOST_REQUIRE(whole.size() == 30u);
  BOOST_REQUIRE(resumed.size() == 10u);  // the third epoch only
  BOOST_TEST(std::vector<std::string>(whole.begin() + 20, whole.end()) == resumed, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
