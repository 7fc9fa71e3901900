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
  // CREATED, STARTED, FINISHED, FAILED; for a served flow SERVING and
  // STOPPED; DIED when its process is gone.
  std::string state;
  std::string details;  // the failure, or a summary
  std::string flow_file;
  std::string created_at, started_at, finished_at;  // ISO 8601 UTC
  long pid = 0;
  std::string address;  // a served flow's URL, while SERVING
};

class RunFolder {
 public:
  // Creates WORKSPACE/NAME (NAME defaults to FLOWNAME-YYYYmmdd-HHMMSS); an
  // existing run of that name is an error.
  static RunFolder create(const std::filesystem::path& workspace, const std::string& name,
                          const std::string& flow_file, const std::string& resolved_flow);
  // An existing run; throws docflow::Error listing the runs there are.
  static RunFolder open(const std::filesystem::path& workspace, const std::string& name);
  // A served flow keeps its folder across restarts (its executors' data is
  // there): the existing one of that name, unless it is still going.
  static RunFolder open_or_create(const std::filesystem::path& workspace, const std::string& name,
                                  const std::string& flow_file, const std::string& resolved_flow);
  static std::vector<RunStatus> list(const std::filesystem::path& workspace);
  // A name nobody has taken in WORKSPACE: FLOWNAME-YYYYmmdd-HHMMSS, with -2,
  // -3, ... when runs of that flow start within one second (two users, two
  // terminals, a test). The folder is made here, atomically, so two processes
  // picking at once never get the same name; create() then fills it.
  static std::string reserve_default_name(const std::filesystem::path& workspace, const std::string& flow_name);

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path log_file() const { return path_ / "run.log"; }
  std::filesystem::path executors_dir() const { return path_ / "executors"; }
  std::filesystem::path checkpoints_dir() const { return path_ / "checkpoints"; }
  std::filesystem::path flow_file() const { return path_ / "flow.yml"; }  // the resolved flow

  RunStatus status() const;
  void set_state(const std::string& state, const std::string& details = "");
  void set_serving(const std::string& address, const std::string& details = "");

 private:
  std::filesystem::path path_;
};

std::string utc_now();
// Writes `content` to `path` atomically: a temporary file, fsync, rename.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

}  // namespace docflow
