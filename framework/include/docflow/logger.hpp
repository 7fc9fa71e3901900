#pragma once
// Timestamped, levelled log lines to the terminal and, during a run, to the
// run's log file. Thread-safe. On an interactive terminal a progress line
// (a bar) stays below the log lines and is redrawn in place; in a pipe or a
// file there is no bar, and periodic step lines say the same in plain text.
#include <fstream>
#include <mutex>
#include <string>

namespace docflow {

enum class LogLevel { Debug, Info, Warning, Error };

class Logger {
 public:
  Logger();
  // Also append every line to `path` (the run's log).
  void open_file(const std::string& path);
  void set_level(LogLevel level) { level_ = level; }
  void set_terminal(bool on) { terminal_ = on; }

  void log(LogLevel level, const std::string& source, const std::string& message);
  void debug(const std::string& source, const std::string& m) { log(LogLevel::Debug, source, m); }
  void info(const std::string& source, const std::string& m) { log(LogLevel::Info, source, m); }
  void warning(const std::string& source, const std::string& m) { log(LogLevel::Warning, source, m); }
  void error(const std::string& source, const std::string& m) { log(LogLevel::Error, source, m); }

  // True when progress() draws: terminal output that is a TTY.
  bool shows_progress() const { return terminal_ && tty_; }
  // Redraws the progress line in place (no-op unless shows_progress()).
  void progress(const std::string& line);
  // Removes the progress line (the epoch ended).
  void end_progress();
  // A periodic status line: always in the log file; on the terminal only
  // where there is no progress bar to say it (a pipe, a CI log).
  void step(const std::string& source, const std::string& message);

 private:
  std::mutex mutex_;
  std::ofstream file_;
  LogLevel level_ = LogLevel::Info;
  bool terminal_ = true;
  bool tty_ = false;         // stdout is a terminal
  std::string progress_;     // the bar now drawn, "" if none
  void clear_bar();          // with mutex_ held
};

}  // namespace docflow
