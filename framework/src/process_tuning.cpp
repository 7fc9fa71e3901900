#include "docflow/process_tuning.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

#include <strings.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace docflow {

void keep_freed_memory() {
  ::mallopt(M_MMAP_MAX, 0);              // large blocks from the heap too, not from mmap (which munmap returns)
  // and never trim the heap's top: -1 disables trimming at any size (INT_MAX stops at
  // 2 GiB, less than a ViT-B/32 training step at batch 32 frees at its end)
  ::mallopt(M_TRIM_THRESHOLD, -1);
}

void one_heap_for_all_threads() { ::mallopt(M_ARENA_MAX, 1); }

bool set_compute_threads(int threads) {
  if (std::getenv("OMP_NUM_THREADS") || std::getenv("OPENBLAS_NUM_THREADS")) return false;
  at::set_num_threads(threads);
  using Set = void (*)(int);
  if (auto set = reinterpret_cast<Set>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
  return true;
}

std::string openblas_kernels() {
  using Name = char* (*)();
  const auto corename = reinterpret_cast<Name>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* chosen = corename ? corename() : nullptr;
  return chosen ? chosen : "";
}

std::string better_openblas_coretype() {
  if (std::getenv("OPENBLAS_CORETYPE")) return {};
  // Prescott is where OpenBLAS lands for a model it does not know; a model it
  // knows keeps its own choice (an AMD part, an older Intel one).
  if (::strcasecmp(openblas_kernels().c_str(), "Prescott") != 0) return {};
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  // Both checks include the operating system's support for the registers.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return {};
}

void restart_with_better_process_settings(const std::string& executable, char** argv) {
  const std::string coretype = better_openblas_coretype(), tunables = better_malloc_tunables();
  if (coretype.empty() && tunables.empty()) return;
  // Set before the exec, so that the new image never comes back here.
  if (!coretype.empty()) ::setenv("OPENBLAS_CORETYPE", coretype.c_str(), 1);
  if (!tunables.empty()) ::setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  ::execv(executable.c_str(), argv);
  // The exec failed: carry on with the settings there are (the variables
  // stay set, for children, which read them at their start).
}

}  // namespace docflow
