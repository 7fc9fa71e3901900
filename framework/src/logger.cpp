#include "docflow/logger.hpp"

#include <unistd.h>

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
std::string format_line(LogLevel level, const std::string& source, const std::string& message) {
  return timestamp() + " " + level_name(level) + " [" + source + "] " + message + "\n";
}
}  // namespace

Logger::Logger() : tty_(::isatty(STDOUT_FILENO) == 1) {}

void Logger::clear_bar() {
  if (!progress_.empty()) std::cout << "\r\033[K" << std::flush;
}

void Logger::progress(const std::string& line) {
  if (!shows_progress()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  progress_ = line;
  std::cout << "\r\033[K" << line << std::flush;
}

void Logger::end_progress() {
  std::lock_guard<std::mutex> lock(mutex_);
  clear_bar();
  progress_.clear();
}

void Logger::step(const std::string& source, const std::string& message) {
  if (LogLevel::Info < level_) return;
  const std::string line = format_line(LogLevel::Info, source, message);
  std::lock_guard<std::mutex> lock(mutex_);
  if (terminal_ && !tty_) std::cout << line << std::flush;
  if (file_.is_open()) file_ << line << std::flush;
}

void Logger::open_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  file_.open(path, std::ios::app);
  if (!file_) throw Error("cannot open log file " + path);
}

void Logger::log(LogLevel level, const std::string& source, const std::string& message) {
  if (level < level_) return;
  const std::string line = format_line(level, source, message);
  std::lock_guard<std::mutex> lock(mutex_);
  if (terminal_) {
    clear_bar();  // the line goes above the bar, which is drawn again below it
    (level >= LogLevel::Warning ? std::cerr : std::cout) << line << std::flush;
    if (!progress_.empty()) std::cout << progress_ << std::flush;
  }
  if (file_.is_open()) file_ << line << std::flush;
}

}  // namespace docflow
