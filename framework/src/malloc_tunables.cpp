// docflow::malloc_tunables_to_ask (process_tuning.hpp), in the library
// without LibTorch: `flow`'s early restart (cli/early_restart.cpp) calls it
// before any library has initialised, from an executable that does not load
// LibTorch unless the command needs it.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "docflow/process_tuning.hpp"

namespace docflow {

const char* malloc_tunables_to_ask() noexcept {
  // Only where huge pages are to be asked for: "always" gives them without
  // asking, "never" refuses them. libc only (flow's early restart calls it
  // before any library initialises).
  const int fd = ::open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  char mode[128];
  const ssize_t n = ::read(fd, mode, sizeof mode - 1);
  ::close(fd);
  if (n <= 0) return nullptr;
  mode[n] = '\0';
  return std::strstr(mode, "[madvise]") ? "glibc.malloc.hugetlb=1" : nullptr;
}

}  // namespace docflow
