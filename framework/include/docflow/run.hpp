#pragma once
// A run folder, `WORKSPACE/NAME/`: the resolved flow (flow.yml), status.json
// (CREATED, STARTED, FINISHED or FAILED, with details and times, written
// atomically), the log (run.log) and each executor's workspace
// (executors/NAME/).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace docflow {

struct RunStatus {
  std::string name;
  std::string state;    // CREATED, STARTED, FINISHED, FAILED; DIED when its process is gone
  std::string details;  // the failure, or a summary
  std::string flow_file;
  std::string created_at, started_at, finished_at;  // ISO 8601 UTC
  long pid = 0;
};

class RunFolder {
 public:
  // Creates WORKSPACE/NAME (NAME defaults to FLOWNAME-YYYYmmdd-HHMMSS); an
  // existing run of that name is an error.
  static RunFolder create(const std::filesystem::path& workspace, const std::string& name,
                          const std::string& flow_file, const std::string& resolved_flow);
  // An existing run; throws docflow::Error listing the runs there are.
  static RunFolder open(const std::filesystem::path& workspace, const std::string& name);
  static std::vector<RunStatus> list(const std::filesystem::path& workspace);

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path log_file() const { return path_ / "run.log"; }
  std::filesystem::path executors_dir() const { return path_ / "executors"; }
  std::filesystem::path checkpoints_dir() const { return path_ / "checkpoints"; }
  std::filesystem::path flow_file() const { return path_ / "flow.yml"; }  // the resolved flow

  RunStatus status() const;
  void set_state(const std::string& state, const std::string& details = "");

 private:
  std::filesystem::path path_;
};

std::string utc_now();
// Writes `content` to `path` atomically: a temporary file, fsync, rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

}  // namespace docflow
