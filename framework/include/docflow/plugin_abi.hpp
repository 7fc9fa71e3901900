#pragma once
// The plugin gate, in plain C: the one entry point a plugin exports and the
// descriptor it returns. The host reads and checks the descriptor (ABI
// version and build id) before any C++ object crosses the boundary, as
// GStreamer and Triton do.
#include <cstddef>
#include <cstdint>

#include <torch/version.h>

// 2: executor entries carry flags and output_param (the table's stride changed).
// 3: ExecutorContext carries the process group of a distributed run.
// 4: Executor gains answers_later() and handle_async() (the vtable changed).
// 5: ProcessGroup gains allreduce_async() and channel() (the vtable changed).
#define DOCFLOW_ABI_MAJOR 5
#define DOCFLOW_ABI_MINOR 0

#define DOCFLOW_STR_(x) #x
#define DOCFLOW_STR(x) DOCFLOW_STR_(x)

// What must be equal on both sides for C++ objects to cross: the compiler,
// the libstdc++ string ABI and the LibTorch version.
#if defined(__clang__)
#define DOCFLOW_COMPILER_ID "clang-" DOCFLOW_STR(__clang_major__)
#elif defined(__GNUC__)
#define DOCFLOW_COMPILER_ID "gcc-" DOCFLOW_STR(__GNUC__)
#else
#define DOCFLOW_COMPILER_ID "unknown-compiler"
#endif
#define DOCFLOW_BUILD_ID                                                                     \
  DOCFLOW_COMPILER_ID " cxx11abi=" DOCFLOW_STR(_GLIBCXX_USE_CXX11_ABI) " torch-" DOCFLOW_STR( \
      TORCH_VERSION_MAJOR) "." DOCFLOW_STR(TORCH_VERSION_MINOR)

// The entry point's name; the host looks up exactly this symbol.
#define DOCFLOW_PLUGIN_ENTRY_NAME "docflow_plugin_entry"

extern "C" {

struct docflow_param_schema {
  const char* name;
  const char* type;          // bool, int, double, string, list, map, any
  const char* default_json;  // the default as JSON text; nullptr: required
  const char* description;
  int has_minimum, has_maximum;
  double minimum, maximum;
  const char* choices;  // for strings: allowed values separated by '|', or nullptr
};

struct docflow_executor_entry {
  const char* name;
  const char* description;
  int is_source;  // produces the requests of a batch run
  const docflow_param_schema* params;
  std::size_t n_params;
  // Creates the executor from a `const docflow::ExecutorContext*`; returns a
  // `docflow::Executor*` owned by the host. Called only after the checks.
  void* (*create)(const void* context);
  const char* details;  // longer text for `flow plugins describe`, or nullptr
  std::uint32_t flags;  // DOCFLOW_EXECUTOR_* bits
  // The parameter naming the file the executor writes, or nullptr: no two
  // executors of a flow may write the same file.
  const char* output_param;
};

// The executor keeps state across requests (a file it writes in order, a
// model it trains, metrics it accumulates): a flow may not give it replicas,
// which would split that state between instances. Sources always are.
#define DOCFLOW_EXECUTOR_SINGLE_INSTANCE 1u

struct docflow_plugin_descriptor {
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  const char* build_id;
  const char* name;
  const char* version;
  const char* description;
  const docflow_executor_entry* executors;
  std::size_t n_executors;
};

typedef const docflow_plugin_descriptor* (*docflow_plugin_entry_fn)(void);
}
