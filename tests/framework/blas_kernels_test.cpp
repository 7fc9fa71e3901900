// `flow` and OpenBLAS's kernels: on a CPU model newer than Debian's OpenBLAS,
// OpenBLAS falls back to its SSE3 "Prescott" kernels (a third of the AVX-512
// sgemm rate on this project's Xeon), and flow starts itself again with
// OPENBLAS_CORETYPE naming the kernels the CPU can run. A user's own
// OPENBLAS_CORETYPE is never overridden.
#include <boost/test/unit_test.hpp>

#include <string>

#include "../support/run_command.hpp"

using docflow::testing::run_command;

namespace {

const std::string kFlow = DOCFLOW_FLOW_EXE;

// The value after "KEY: " on a line of its own in `flow info`'s output.
std::string field(const std::string& output, const std::string& key) {
  const std::string text = "\n" + output;
  const auto at = text.find("\n" + key + ": ");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 3;
  return text.substr(start, text.find('\n', start) - start);
}

bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(blas_kernels)

BOOST_AUTO_TEST_CASE(flow_never_runs_on_the_fallback_kernels_of_a_cpu_that_has_better) {
  const auto r = run_command("env -u OPENBLAS_CORETYPE " + kFlow + " info");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);  // also: the restart kept the arguments
  if (field(r.output, "blas") != "OpenBLAS") {
    BOOST_TEST_MESSAGE("skipped: the BLAS is not OpenBLAS (" << r.output << ")");
    return;
  }
  const std::string kernels = field(r.output, "blas kernels"), set = field(r.output, "OPENBLAS_CORETYPE");
  BOOST_TEST(!kernels.empty(), r.output);
  if (set == "(not set)") {
    // OpenBLAS knew this CPU, or the CPU has nothing better than SSE3.
    BOOST_TEST(!(kernels == "Prescott" && has_avx2()), r.output);
  } else {
    // flow chose, and OpenBLAS took the choice.
    BOOST_TEST(set == (has_avx512() ? "SkylakeX" : "Haswell"), r.output);
    BOOST_TEST(kernels == set, r.output);
  }
}

BOOST_AUTO_TEST_CASE(a_users_openblas_coretype_stands) {
  const auto r = run_command("OPENBLAS_CORETYPE=Prescott " + kFlow + " info");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  if (field(r.output, "blas") != "OpenBLAS") return;
  BOOST_TEST(field(r.output, "OPENBLAS_CORETYPE") == "Prescott", r.output);
  BOOST_TEST(field(r.output, "blas kernels") == "Prescott", r.output);
}

BOOST_AUTO_TEST_CASE(info_refuses_arguments_it_does_not_take) {
  const auto r = run_command(kFlow + " info --kernels");
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(r.output.find("flow info: unexpected argument '--kernels'") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
