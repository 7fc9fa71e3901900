#pragma once
// docflow's exception types. Each message names what the user must look at:
// the flow file with line and column, the executor, the parameter, the plugin.
#include <stdexcept>
#include <string>
#include <vector>

namespace docflow {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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

 private:
  std::string executor_, endpoint_;
};

// The closest of `candidates` to `word` when it is close enough to be a
// likely typo, else empty: for "did you mean ...?" hints.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace docflow
