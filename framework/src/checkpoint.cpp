#include "docflow/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "docflow/error.hpp"
#include "docflow/run.hpp"

namespace fs = std::filesystem;

namespace docflow {

void sync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + " to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) throw Error("cannot sync " + path.string() + ": " + std::strerror(saved));
}

void sync_tree(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() || entry.is_directory()) sync_path(entry.path());
  sync_path(dir);
}

namespace {

std::string folder_name(int epoch) {
  std::ostringstream s;
  s << "epoch-" << std::setw(4) << std::setfill('0') << epoch;
  return s.str();
}

std::optional<Checkpoint> read_checkpoint(const fs::path& path) {
  std::ifstream in(path / "checkpoint.json");
  if (!in) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    Checkpoint c;
    c.epoch = j.at("epoch").get<int>();
    c.path = path;
    for (const auto& [name, size] : j.at("run_files").items()) c.run_files[name] = size.get<std::uintmax_t>();
    return c;
  } catch (const std::exception& e) {
    throw Error("checkpoint " + (path / "checkpoint.json").string() + " is unreadable: " + e.what());
  }
}

}  // namespace

CheckpointStore::CheckpointStore(fs::path dir, int keep) : dir_(std::move(dir)), keep_(std::max(1, keep)) {}

fs::path CheckpointStore::begin(int epoch) {
  fs::create_directories(dir_);
  const fs::path partial = dir_ / (folder_name(epoch) + ".partial");
  fs::remove_all(partial);  // what a crash left behind
  fs::create_directories(partial / "executors");
  return partial;
}

Checkpoint CheckpointStore::commit(int epoch, const std::map<std::string, std::uintmax_t>& run_files) {
  const fs::path partial = dir_ / (folder_name(epoch) + ".partial"), final_dir = dir_ / folder_name(epoch);
  nlohmann::json j;
  j["epoch"] = epoch;
  j["created_at"] = utc_now();
  j["run_files"] = nlohmann::json::object();
  for (const auto& [name, size] : run_files) j["run_files"][name] = size;
  {
    std::ofstream out(partial / "checkpoint.json");
    out << j.dump(2) << "\n";
    if (!out) throw Error("cannot write " + (partial / "checkpoint.json").string());
  }
  sync_tree(partial);
  fs::remove_all(final_dir);  // the same epoch again (a resumed run redoing it)
  fs::rename(partial, final_dir);
  sync_path(dir_);
  write_file_atomically(dir_ / "LATEST", folder_name(epoch) + "\n");
  sync_path(dir_);

  // Keep the newest `keep_`: epochs are the names' order.
  std::vector<fs::path> complete;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string n = entry.path().filename().string();
    if (entry.is_directory() && n.rfind("epoch-", 0) == 0 && n.find('.') == std::string::npos) complete.push_back(entry.path());
  }
  std::sort(complete.begin(), complete.end());
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep_) < complete.size(); ++i)
    if (complete[i] != final_dir) fs::remove_all(complete[i]);
  Checkpoint c;
  c.epoch = epoch;
  c.path = final_dir;
  c.run_files = run_files;
  return c;
}

std::optional<Checkpoint> CheckpointStore::latest() const {
  std::ifstream in(dir_ / "LATEST");
  std::string name;
  if (!(in >> name)) return std::nullopt;
  if (name.find('/') != std::string::npos || name.rfind("epoch-", 0) != 0)
    throw Error((dir_ / "LATEST").string() + " names '" + name + "', not a checkpoint folder");
  auto c = read_checkpoint(dir_ / name);
  if (!c) throw Error((dir_ / "LATEST").string() + " names " + name + ", which has no checkpoint.json");
  return c;
}

}  // namespace docflow
