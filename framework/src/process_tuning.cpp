#include "docflow/process_tuning.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>

#include <climits>

namespace docflow {

void keep_freed_memory() {
  ::mallopt(M_MMAP_MAX, 0);              // large blocks from the heap too, not from mmap (which munmap returns)
  // and never trim the heap's top: -1 disables trimming at any size (INT_MAX stops at
  // 2 GiB, less than a ViT-B/32 training step at batch 32 frees at its end)
  ::mallopt(M_TRIM_THRESHOLD, -1);
}

bool set_compute_threads(int threads) {
  if (std::getenv("OMP_NUM_THREADS") || std::getenv("OPENBLAS_NUM_THREADS")) return false;
  at::set_num_threads(threads);
  using Set = void (*)(int);
  if (auto set = reinterpret_cast<Set>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
  return true;
}

}  // namespace docflow
