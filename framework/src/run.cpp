#include "docflow/run.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "docarray/utf8.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "docflow/error.hpp"

namespace fs = std::filesystem;

namespace docflow {

std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_file_atomically(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw Error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw Error("cannot write " + tmp.string() + ": " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw Error("cannot sync " + tmp.string() + ": " + std::strerror(errno));
  fs::rename(tmp, path);
}

namespace {

RunStatus read_recorded_status(const fs::path& dir);

// A run whose process is gone without writing FINISHED or FAILED died
// (kill -9, power loss): say so, and how to continue it.
RunStatus read_status(const fs::path& dir) {
  RunStatus s = read_recorded_status(dir);
  if ((s.state == "STARTED" || s.state == "CREATED" || s.state == "SERVING") && s.pid > 0 && ::kill(static_cast<pid_t>(s.pid), 0) != 0 &&
      errno == ESRCH) {
    s.state = "DIED";
    s.details = "its process (pid " + std::to_string(s.pid) + ") ended without finishing";
    if (fs::exists(dir / "checkpoints" / "LATEST"))
      s.details += "; continue it with: flow run " + s.flow_file + " --resume " + s.name;
  }
  return s;
}

RunStatus read_recorded_status(const fs::path& dir) {
  RunStatus s;
  s.name = dir.filename().string();
  std::ifstream f(dir / "status.json");
  if (!f) {
    s.state = "UNKNOWN";
    s.details = "no status.json";
    return s;
  }
  try {
    nlohmann::json j = nlohmann::json::parse(f);
    s.state = j.value("state", "UNKNOWN");
    s.details = j.value("details", "");
    s.flow_file = j.value("flow_file", "");
    s.created_at = j.value("created_at", "");
    s.started_at = j.value("started_at", "");
    s.finished_at = j.value("finished_at", "");
    s.pid = j.value("pid", 0L);
    s.address = j.value("address", "");
  } catch (const std::exception& e) {
    s.state = "UNKNOWN";
    s.details = std::string("unreadable status.json: ") + e.what();
  }
  return s;
}

void write_status(const fs::path& dir, const RunStatus& s) {
  // Any exception's message can land in details (LibTorch's, the standard
  // library's): JSON holds only UTF-8, and a throw here would lose it.
  auto text = [](const std::string& t) { return docarray::escape_invalid_utf8(t); };
  nlohmann::ordered_json j;
  j["name"] = text(s.name);
  j["state"] = s.state;
  j["details"] = text(s.details);
  j["flow_file"] = text(s.flow_file);
  j["created_at"] = s.created_at;
  j["started_at"] = s.started_at;
  j["finished_at"] = s.finished_at;
  j["pid"] = s.pid;
  if (!s.address.empty()) j["address"] = s.address;
  write_file_atomically(dir / "status.json", j.dump(2) + "\n");
}

}  // namespace

RunFolder RunFolder::create(const fs::path& workspace, const std::string& name, const std::string& flow_file,
                            const std::string& resolved_flow) {
  RunFolder r;
  r.path_ = workspace / name;
  if (fs::exists(r.path_ / "status.json"))
    throw Error("a run named '" + name + "' already exists in " + workspace.string() +
                " (choose another --name)");
  fs::create_directories(r.path_ / "executors");
  write_file_atomically(r.path_ / "flow.yml", resolved_flow);
  RunStatus s;
  s.name = name;
  s.state = "CREATED";
  s.flow_file = flow_file;
  s.created_at = utc_now();
  s.pid = ::getpid();
  write_status(r.path_, s);
  return r;
}

std::string RunFolder::reserve_default_name(const fs::path& workspace, const std::string& flow_name) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  const std::string base = flow_name + "-" + stamp;
  std::error_code ec;
  fs::create_directories(workspace, ec);
  if (ec) throw Error("cannot create the workspace " + workspace.string() + ": " + ec.message());
  for (int n = 1; n <= 1000; ++n) {
    const std::string name = n == 1 ? base : base + "-" + std::to_string(n);
    if (fs::create_directory(workspace / name, ec)) return name;  // false: taken by another run
    if (ec) throw Error("cannot create the run folder " + (workspace / name).string() + ": " + ec.message());
  }
  throw Error("more than 1000 runs of '" + flow_name + "' started in one second in " + workspace.string() +
              " (choose a --name)");
}

RunFolder RunFolder::open(const fs::path& workspace, const std::string& name) {
  RunFolder r;
  r.path_ = workspace / name;
  if (!fs::exists(r.path_ / "status.json")) {
    std::string names;
    for (const auto& s : list(workspace)) names += (names.empty() ? "" : ", ") + s.name;
    throw Error("no run named '" + name + "' in " + workspace.string() + " (runs: " + (names.empty() ? "none" : names) + ")");
  }
  return r;
}

std::vector<RunStatus> RunFolder::list(const fs::path& workspace) {
  std::vector<RunStatus> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(workspace, ec))
    if (e.is_directory() && fs::exists(e.path() / "status.json")) out.push_back(read_status(e.path()));
  std::sort(out.begin(), out.end(), [](const RunStatus& a, const RunStatus& b) { return a.created_at < b.created_at; });
  return out;
}

RunStatus RunFolder::status() const { return read_status(path_); }

void RunFolder::set_state(const std::string& state, const std::string& details) {
  RunStatus s = status();
  s.state = state;
  s.details = details;
  s.pid = ::getpid();
  if (state == "STARTED") s.started_at = utc_now();
  if (state == "STARTED" || state == "SERVING") s.finished_at.clear();
  if (state == "FINISHED" || state == "FAILED" || state == "STOPPED") s.finished_at = utc_now();
  if (state != "SERVING") s.address.clear();
  write_status(path_, s);
}

void RunFolder::set_serving(const std::string& address, const std::string& details) {
  RunStatus s = status();
  s.state = "SERVING";
  s.details = details;
  s.address = address;
  s.pid = ::getpid();
  s.started_at = utc_now();
  s.finished_at.clear();
  write_status(path_, s);
}

RunFolder RunFolder::open_or_create(const fs::path& workspace, const std::string& name, const std::string& flow_file,
                                    const std::string& resolved_flow) {
  if (!fs::exists(workspace / name / "status.json")) return create(workspace, name, flow_file, resolved_flow);
  RunFolder r = open(workspace, name);
  const RunStatus s = r.status();
  if (s.state == "SERVING" || s.state == "STARTED" || s.state == "CREATED")
    throw Error("'" + name + "' in " + workspace.string() + " is still " + s.state + " (pid " + std::to_string(s.pid) +
                (s.address.empty() ? "" : ", " + s.address) + "): stop it first, or choose another --name");
  write_file_atomically(r.path_ / "flow.yml", resolved_flow);
  return r;
}

}  // namespace docflow
