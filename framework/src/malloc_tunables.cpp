// docflow::malloc_tunables_to_ask and better_malloc_tunables
// (process_tuning.hpp), in the library without LibTorch: `flow`
// (cli/main.cpp) restarts with them before it loads the command library,
// and LibTorch with it.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "docflow/process_tuning.hpp"

namespace docflow {

const char* malloc_tunables_to_ask() noexcept {
  // Only where huge pages are to be asked for: "always" gives them without
  // asking, "never" refuses them.
  const int fd = ::open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  char mode[128];
  const ssize_t n = ::read(fd, mode, sizeof mode - 1);
  ::close(fd);
  if (n <= 0) return nullptr;
  mode[n] = '\0';
  return std::strstr(mode, "[madvise]") ? "glibc.malloc.hugetlb=1" : nullptr;
}

std::string better_malloc_tunables() {
  if (std::getenv("GLIBC_TUNABLES")) return {};
  const char* tunables = malloc_tunables_to_ask();
  return tunables ? tunables : "";
}

}  // namespace docflow
