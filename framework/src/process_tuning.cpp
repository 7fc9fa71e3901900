#include "docflow/process_tuning.hpp"

#include <malloc.h>

#include <climits>

namespace docflow {

void keep_freed_memory() {
  ::mallopt(M_MMAP_MAX, 0);              // large blocks from the heap too, not from mmap (which munmap returns)
  ::mallopt(M_TRIM_THRESHOLD, INT_MAX);  // and never trim the heap's top
}

}  // namespace docflow
