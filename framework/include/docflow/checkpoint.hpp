#pragma once
// Training checkpoints: the whole flow's state at an epoch boundary, so that
// `flow run FILE --resume NAME` continues a run that died (kill -9, power
// loss) and ends as an uninterrupted run would have.
//
// The state is the flow's, not one executor's: the reader's position and
// random generator, the trainer's weights and optimizer, the evaluator's
// history, the best-model tracker's best value. The runtime takes it at the
// epoch barrier, when no request is in flight, so the pieces agree (a
// Chandy-Lamport snapshot with the barrier as the marker).
//
// On disk, CHECKPOINTS/epoch-0003/{checkpoint.json, executors/NAME/...}.
// A checkpoint is written into epoch-0003.partial, every file fsynced, then
// renamed and the folder fsynced; LATEST names the newest complete one and is
// replaced atomically. A crash at any moment leaves the previous checkpoint
// whole and LATEST pointing at it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace docflow {

struct Checkpoint {
  int epoch = -1;                          // the last epoch it contains (0-based)
  std::filesystem::path path;              // CHECKPOINTS/epoch-NNNN
  std::map<std::string, std::uintmax_t> run_files;  // sizes of the run folder's *.jsonl logs then

  std::filesystem::path executor_dir(const std::string& name) const { return path / "executors" / name; }
};

class CheckpointStore {
 public:
  // Keeps the newest `keep` checkpoints in `dir` (created when needed).
  CheckpointStore(std::filesystem::path dir, int keep);

  // An empty folder to write epoch `epoch`'s state into.
  std::filesystem::path begin(int epoch);
  // Makes what begin() returned durable and the newest; prunes old ones.
  // `run_files` is recorded so that a resume can roll the logs back.
  Checkpoint commit(int epoch, const std::map<std::string, std::uintmax_t>& run_files);
  // The newest complete checkpoint, or nothing.
  std::optional<Checkpoint> latest() const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  int keep_;
};

// fsync for a file or folder (a folder's entry list), and for every file
// under a folder. Throw docflow::Error naming the path.
void sync_path(const std::filesystem::path& path);
void sync_tree(const std::filesystem::path& dir);

}  // namespace docflow
