#pragma once
// docflow's exception types. Each message names what the user must look at:
// the flow file with line and column, the executor, the parameter, the plugin.
#include <stdexcept>
#include <string>
#include <vector>

namespace docflow {

// Every message is valid UTF-8: a byte of broken input that it quotes is
// written as \xNN, so that the status file's JSON (and any other JSON the
// message goes into) can always hold it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what);
};

// Where in a flow file something was written (1-based line and column).
struct Location {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const;  // "flow.yml:12:5", or the file alone when unknown
};

// A flow file that is not valid: "FILE:LINE:COL: MESSAGE".
class ConfigError : public Error {
 public:
  ConfigError(const Location& where, const std::string& what);
  const Location& where() const { return where_; }
  // The message without the location in front.
  std::string message() const;

 private:
  Location where_;
};

// A plugin that cannot be found, loaded or trusted.
class PluginError : public Error {
 public:
  using Error::Error;
};

// A failure inside an executor: "executor 'NAME' on /ENDPOINT: MESSAGE".
class ExecutorError : public Error {
 public:
  ExecutorError(const std::string& executor, const std::string& endpoint, const std::string& what);
  const std::string& executor() const { return executor_; }
  const std::string& endpoint() const { return endpoint_; }
  // What the executor said, without the executor and endpoint in front.
  const std::string& message() const { return message_; }

 private:
  std::string executor_, endpoint_, message_;
};

// The closest of `candidates` to `word` when it is close enough to be a
// likely typo, else empty: for "did you mean ...?" hints.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace docflow
