// `flow` and OpenBLAS's kernels: on a CPU model newer than Debian's OpenBLAS,
// OpenBLAS falls back to its SSE3 "Prescott" kernels (a third of the AVX-512
// sgemm rate on this project's Xeon), and flow starts itself again with
// OPENBLAS_CORETYPE naming the kernels the CPU can run; and where the kernel
// gives transparent huge pages only when asked, with GLIBC_TUNABLES asking
// for them for malloc's heap. A user's own variables are never overridden.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "../support/file_bytes.hpp"
#include "../support/huge_pages.hpp"
#include "../support/detached_service.hpp"
#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"

using docflow::testing::run_command;

using docflow::testing::file_bytes;

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

BOOST_AUTO_TEST_SUITE(process_settings)

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

BOOST_AUTO_TEST_CASE(malloc_asks_for_huge_pages_where_the_kernel_gives_them_when_asked) {
  const auto r = run_command("env -u GLIBC_TUNABLES " + kFlow + " info");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(field(r.output, "GLIBC_TUNABLES") == (docflow::testing::huge_pages_only_when_asked() ? "glibc.malloc.hugetlb=1" : "(not set)"),
             r.output);
}

// The restart for the heap's setting comes before `flow` loads its command
// library: LibTorch's initialisers (0.5 s of CPU here) run once, not twice.
// The dynamic loader names each initialiser it calls under LD_DEBUG=files.
BOOST_AUTO_TEST_CASE(the_restart_for_huge_pages_initialises_libtorch_once) {
  // A user's OPENBLAS_CORETYPE (the safe SSE3 one), so that OpenBLAS's choice
  // never calls for the restart from main().
  const auto r = run_command("env -u GLIBC_TUNABLES OPENBLAS_CORETYPE=Prescott LD_DEBUG=files " + kFlow + " info");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  int torch_initialised = 0;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (line.find("calling init:") != std::string::npos && line.find("libtorch_cpu.so") != std::string::npos) ++torch_initialised;
  BOOST_TEST(torch_initialised == 1, r.output.substr(0, 2000));
  BOOST_TEST(field(r.output, "GLIBC_TUNABLES") == (docflow::testing::huge_pages_only_when_asked() ? "glibc.malloc.hugetlb=1" : "(not set)"));
}

BOOST_AUTO_TEST_CASE(a_users_glibc_tunables_stand) {
  const auto r = run_command("GLIBC_TUNABLES=glibc.malloc.check=0 " + kFlow + " info");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(field(r.output, "GLIBC_TUNABLES") == "glibc.malloc.check=0", r.output);
}

// The effect itself, in a served flow: glibc marked its heap for huge pages
// (the kernel's THPeligible), which without the setting it does not.
BOOST_AUTO_TEST_CASE(a_served_flows_heap_is_marked_for_huge_pages) {
#if defined(__SANITIZE_ADDRESS__)
  BOOST_TEST_MESSAGE("skipped: under AddressSanitizer malloc is the sanitizer's, not glibc's (no [heap] to look at)");
  return;
#endif
  if (!docflow::testing::huge_pages_only_when_asked()) {
    BOOST_TEST_MESSAGE("skipped: transparent huge pages are not in madvise mode here");
    return;
  }
  docflow::testing::TempDir dir;
  const std::string flow = dir.file("serve.yml");
  std::ofstream(flow) << "jtype: Flow\nwith: {name: thp, workspace: " << dir.file("runs")
                      << ", protocol: http, port: 0, plugins: [" TEST_PLUGIN_DIR "]}\nexecutors:\n"
                      << "  - {name: tagger, uses: Tagger, with: {key: stage, value: served}}\n";
  for (const bool asked : {true, false}) {
    const std::string env = asked ? "env -u GLIBC_TUNABLES " : "GLIBC_TUNABLES=glibc.malloc.check=0 ";
    const std::string name = asked ? "asked" : "not_asked";
    docflow::testing::DetachedService server(env + kFlow + " serve " + flow + " --name " + name + " --detach",
                                             dir.file("runs/" + name + "/status.json"));
    const std::string pid = std::to_string(server.pid());
    const std::string environ = file_bytes("/proc/" + pid + "/environ");
    BOOST_TEST((environ.find("GLIBC_TUNABLES=glibc.malloc.hugetlb=1") != std::string::npos) == asked);
    // The heap's mappings in smaps (glibc's madvise splits it in several):
    // is any eligible for huge pages?
    const std::string smaps = file_bytes("/proc/" + pid + "/smaps");
    int heaps = 0;
    bool eligible = false;
    for (auto at = smaps.find("[heap]"); at != std::string::npos; at = smaps.find("[heap]", at + 1)) {
      ++heaps;
      const auto line = smaps.find("THPeligible:", at);
      if (line != std::string::npos) eligible |= smaps.substr(line, smaps.find('\n', line) - line).find('1') != std::string::npos;
    }
    BOOST_TEST_REQUIRE(heaps > 0, "no [heap] mapping in /proc/" << pid << "/smaps");
    BOOST_TEST(eligible == asked, name << ": " << heaps << " heap mappings");
  }
}

BOOST_AUTO_TEST_CASE(info_refuses_arguments_it_does_not_take) {
  const auto r = run_command(kFlow + " info --kernels");
  BOOST_TEST(r.exit_code == 2, r.output);
  BOOST_TEST(r.output.find("flow info: unexpected argument '--kernels'") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
