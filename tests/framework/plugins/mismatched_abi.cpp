// A plugin that claims another ABI major version or build id: the loader
// must refuse it before calling anything but its entry point.
#include "docflow/plugin_abi.hpp"

#ifndef TEST_ABI_MAJOR
#define TEST_ABI_MAJOR DOCFLOW_ABI_MAJOR
#endif
#ifndef TEST_BUILD_ID
#define TEST_BUILD_ID DOCFLOW_BUILD_ID
#endif

namespace {
void* never_called(const void*) { __builtin_trap(); }
const docflow_executor_entry kExecutors[] = {{"Mismatched", "must never be created", 0, nullptr, 0, &never_called, nullptr}};
}  // namespace

extern "C" __attribute__((visibility("default"))) const docflow_plugin_descriptor* docflow_plugin_entry() {
  static const docflow_plugin_descriptor d = {TEST_ABI_MAJOR, DOCFLOW_ABI_MINOR, TEST_BUILD_ID, "mismatched", "0.0.0",
                                              "refused by the gate", kExecutors, 1};
  return &d;
}
