#include "docflow/logger.hpp"

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "docflow/error.hpp"

namespace docflow {
namespace {
const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO";
    case LogLevel::Warning: return "WARNING";
    case LogLevel::Error: return "ERROR";
  }
  return "INFO";
}

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::ostringstream s;
  s << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << '.' << std::setw(3) << std::setfill('0') << ms << 'Z';
  return s.str();
}
}  // namespace

void Logger::open_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  file_.open(path, std::ios::app);
  if (!file_) throw Error("cannot open log file " + path);
}

void Logger::log(LogLevel level, const std::string& source, const std::string& message) {
  if (level < level_) return;
  std::string line = timestamp() + " " + level_name(level) + " [" + source + "] " + message + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  if (terminal_) (level >= LogLevel::Warning ? std::cerr : std::cout) << line << std::flush;
  if (file_.is_open()) file_ << line << std::flush;
}

}  // namespace docflow
