#pragma once
// Process-wide settings `flow run` applies before it loads anything.
#include <string>

namespace docflow {

// Keeps freed memory in the process's heap instead of handing it back to the
// kernel. A training step frees and allocates the same large activations
// every step; returned to the kernel, each comes back as fresh pages to
// fault in and zero (perf: page faults and clear_page were about 8% of a
// CLIP step here; the step ran about 13% faster without them). The cost:
// the process keeps its peak heap until it exits. Programs that embed
// docflow for training can call it first thing in main().
void keep_freed_memory();

// One malloc heap for every thread (M_ARENA_MAX 1). glibc gives other
// threads heaps of their own, in 64 MB pieces that it unmaps as soon as
// they are empty whatever keep_freed_memory() asked, so their pages come
// back zeroed (clear_page: 5.5% of a ViT-B/32 rank's profile) on the next
// step. Measured on data-parallel ranks (bench_distributed.sh vit, 2 ranks
// of 1 thread, alternating): 5.63-5.91 -> 4.02-4.08 s per step, the
// gradient allreduce 1.10-1.22 -> 0.61 s. One process with 2 threads did
// not gain there (3.79-3.83 s without, 3.89-4.15 s with), but on a VM
// where a page's first touch is dear (2026-12-07, AMD EPYC) it ran
// 4.02-4.57 -> 2.92-3.20 s per step: the executors run on threads of their
// own, each with its own heaps. `flow run` calls it in every process.
// Call it before any other thread starts.
void one_heap_for_all_threads();

// Threads one computation may use: LibTorch's intra-op pool and OpenBLAS's
// (looked up at run time; another BLAS is left alone). `flow serve` runs
// requests side by side and gives each one thread by default: a query's
// products are too small to split (measured on the search flow, 2 cores:
// 16 clients got 264 queries/s with 2 threads each, 543 with 1; one client
// the same 330). Returns false, changing nothing, when the user set
// OMP_NUM_THREADS or OPENBLAS_NUM_THREADS: their choice stands.
bool set_compute_threads(int threads);

// The OpenBLAS kernels this CPU deserves. OpenBLAS (Debian's, built for
// every x86-64) picks its kernels by CPU model when it is loaded, and a model
// newer than its release falls back to the SSE3 "Prescott" kernels: on this
// project's Xeon (family 6, model 207) sgemm ran at a third of its AVX-512
// rate, and every LibTorch product with it. OPENBLAS_CORETYPE overrides the
// choice but is read only at load, so this returns the value to start the
// process again with ("SkylakeX" for AVX-512, "Haswell" for AVX2 + FMA), or
// an empty string when nothing is to be done: OpenBLAS is not there, chose
// a kernel of its own, or the user set OPENBLAS_CORETYPE (their choice stands).
std::string better_openblas_coretype();

// The kernels OpenBLAS runs on ("SkylakeX", "Haswell", "Prescott"...), or an
// empty string when the BLAS is not OpenBLAS.
std::string openblas_kernels();

// The GLIBC_TUNABLES to start the process again with so that malloc asks
// for transparent huge pages for its heap ("glibc.malloc.hugetlb=1": glibc
// madvises every heap extension and mmap'd block), or an empty string when
// the kernel gives huge pages without asking ("always") or never, or the
// user set GLIBC_TUNABLES (their choice stands). Tensors live on that heap
// (keep_freed_memory), a training step's activations among them: with 4 KB
// pages every first touch faults and every product misses the TLB more. On
// a VM measured here (bench/RESULTS.md, 2026-12-07) first touches of 4 KB
// pages cost about 1-5 us each, and CLIP small's training step ran 7%
// faster with huge pages (PyTorch in Python, which returns memory to the
// system every step, 2.3-2.9x faster).
std::string better_malloc_tunables();

// The GLIBC_TUNABLES value better_malloc_tunables() asks for where the
// kernel's mode calls for one, whatever the environment says, or null.
// In docflow_base, without LibTorch: `flow` (framework/cli/main.cpp)
// restarts with it before it loads LibTorch, which it then loads once.
const char* malloc_tunables_to_ask() noexcept;

// `flow`'s first step: when better_openblas_coretype() names a kernel or
// better_malloc_tunables() a setting, sets OPENBLAS_CORETYPE and
// GLIBC_TUNABLES to them (both are read only at a process's start) and
// replaces this process by `executable` (the program's own path: the
// process's name in ps, pkill and /proc/PID/comm comes from the path
// executed, so not /proc/self/exe) with the same arguments (same pid;
// children inherit the variables). Returns only when nothing was to be done
// or the exec failed.
void restart_with_better_process_settings(const std::string& executable, char** argv);

}  // namespace docflow
