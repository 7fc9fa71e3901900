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

}  // namespace docflow
