#pragma once
// Every suite runs the same whatever the user's shell exports: the variables
// docflow reads are cleared before the first test, so a plugin author's
// DOCFLOW_PLUGIN_PATH (say) changes neither the plugins a test loads nor the
// messages it checks. Tests that exercise a variable set it themselves, and
// the `flow` processes they start inherit the cleared environment.
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "huge_pages.hpp"

namespace docflow::testing {

struct CleanEnvironment {
  CleanEnvironment() {
    for (const char* name : {"DOCFLOW_PLUGIN_PATH", "DOCFLOW_DIST_TIMEOUT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                             "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE", "GLOO_SOCKET_IFNAME"})
      ::unsetenv(name);
    // The `flow` processes the tests start get at once the malloc setting
    // `flow` would restart itself to get (docflow::better_malloc_tunables):
    // the restart loads LibTorch again, 0.6 s a process here and 2 s under
    // AddressSanitizer, a few minutes over a suite. The tests of the restart
    // itself (process_settings_test.cpp) unset it.
    if (!std::getenv("GLIBC_TUNABLES") && huge_pages_only_when_asked()) ::setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1);
  }
};

}  // namespace docflow::testing

using DocflowCleanEnvironment = docflow::testing::CleanEnvironment;
BOOST_TEST_GLOBAL_FIXTURE(DocflowCleanEnvironment);
