#pragma once
// Process-wide settings `flow run` applies before it loads anything.

namespace docflow {

// Keeps freed memory in the process's heap instead of handing it back to the
// kernel. A training step frees and allocates the same large activations
// every step; returned to the kernel, each comes back as fresh pages to
// fault in and zero (perf: page faults and clear_page were about 8% of a
// CLIP step here; the step ran about 13% faster without them). The cost:
// the process keeps its peak heap until it exits. Programs that embed
// docflow for training can call it first thing in main().
void keep_freed_memory();

// Threads one computation may use: LibTorch's intra-op pool and OpenBLAS's
// (looked up at run time; another BLAS is left alone). `flow serve` runs
// requests side by side and gives each one thread by default: a query's
// products are too small to split (measured on the search flow, 2 cores:
// 16 clients got 264 queries/s with 2 threads each, 543 with 1; one client
// the same 330). Returns false, changing nothing, when the user set
// OMP_NUM_THREADS or OPENBLAS_NUM_THREADS: their choice stands.
bool set_compute_threads(int threads);

}  // namespace docflow
