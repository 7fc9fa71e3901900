#include "docarray/error.hpp"

#include "docarray/utf8.hpp"

namespace docarray {
namespace {
std::string locate(const std::string& source, std::int64_t record, std::uint64_t offset,
                   const std::string& what) {
  std::string where = source.empty() ? "<stream>" : source;
  if (record < 0) {
    where += ": header";
  } else {
    where += ": record " + std::to_string(record);
  }
  where += " at byte offset " + std::to_string(offset);
  return where + ": " + what;
}
}  // namespace

Error::Error(const std::string& what) : std::runtime_error(escape_invalid_utf8(what)) {}

FormatError::FormatError(const std::string& source, std::int64_t record, std::uint64_t offset,
                         const std::string& what)
    : Error(locate(source, record, offset, what)), source_(source), record_(record), offset_(offset) {}

}  // namespace docarray
