#pragma once
// Timestamped, levelled log lines to the terminal and, during a run, to the
// run's log file. Thread-safe.
#include <fstream>
#include <mutex>
#include <string>

namespace docflow {

enum class LogLevel { Debug, Info, Warning, Error };

class Logger {
 public:
  Logger() = default;
  // Also append every line to `path` (the run's log).
  void open_file(const std::string& path);
  void set_level(LogLevel level) { level_ = level; }
  void set_terminal(bool on) { terminal_ = on; }

  void log(LogLevel level, const std::string& source, const std::string& message);
  void debug(const std::string& source, const std::string& m) { log(LogLevel::Debug, source, m); }
  void info(const std::string& source, const std::string& m) { log(LogLevel::Info, source, m); }
  void warning(const std::string& source, const std::string& m) { log(LogLevel::Warning, source, m); }
  void error(const std::string& source, const std::string& m) { log(LogLevel::Error, source, m); }

 private:
  std::mutex mutex_;
  std::ofstream file_;
  LogLevel level_ = LogLevel::Info;
  bool terminal_ = true;
};

}  // namespace docflow
