#include "docflow/process_tuning.hpp"

#include <malloc.h>

#include <climits>

namespace docflow {

void keep_freed_memory() {
  ::mallopt(M_MMAP_MAX, 0);              // large blocks from the heap too, not from mmap (which munmap returns)
  // and never trim the heap's top: -1 disables trimming at any size (INT_MAX stops at
  // 2 GiB, less than a ViT-B/32 training step at batch 32 frees at its end)
  ::mallopt(M_TRIM_THRESHOLD, -1);
}

}  // namespace docflow
