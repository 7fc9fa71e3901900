// `flow`'s restart with GLIBC_TUNABLES (docflow::better_malloc_tunables),
// made before any library initialises. The dynamic loader runs an
// executable's DT_PREINIT_ARRAY before the initialisers of every library it
// loaded; LibTorch's (its operator registrations) cost about 0.5 s of CPU
// here, which a restart after loading them paid twice on every `flow run`,
// `serve`, `executor` and `info`. (Since `flow` loads LibTorch only with its
// command library (main.cpp), a restart from main() would now be as cheap;
// this one stays, tested, and covers any library `flow` links.) Only libc is
// used: nothing else is initialised yet, and `environ` need not be set up,
// so the environment comes from the arguments the loader passes and goes to
// execve as a new array.
//
// The OpenBLAS side of the restart (better_openblas_coretype) needs OpenBLAS
// loaded and initialised to ask it which kernels it chose: it stays in
// the command library's entry (flow_main.cpp), for the CPU models OpenBLAS
// does not know.
#include <alloca.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "docflow/process_tuning.hpp"
#include "process_settings_commands.hpp"

namespace {

void restart_before_the_libraries_initialise(int argc, char** argv, char** envp) {
  if (argc < 2 || !argv || !envp || !docflow::cli::restarts_for_process_settings(argv[1])) return;
  // A set-user-ID start would have its GLIBC_TUNABLES removed by glibc: no
  // restart then, which would come back here for ever.
  if (::getauxval(AT_SECURE)) return;
  std::size_t count = 0;
  for (char** e = envp; *e; ++e, ++count)
    if (std::strncmp(*e, "GLIBC_TUNABLES=", 15) == 0) return;  // the user's (or an earlier restart's) stands
  const char* tunables = docflow::malloc_tunables_to_ask();
  if (!tunables) return;
  static char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof self) - 1) return;  // none, or maybe cut short
  self[n] = '\0';
  static char setting[128];
  if (std::strlen(tunables) + 16 > sizeof setting) return;
  std::strcpy(setting, "GLIBC_TUNABLES=");
  std::strcat(setting, tunables);
  char** env = static_cast<char**>(alloca((count + 2) * sizeof(char*)));
  std::memcpy(env, envp, count * sizeof(char*));
  env[count] = setting;
  env[count + 1] = nullptr;
  // The path /proc/self/exe points to, not that link itself: ps, pkill and
  // /proc/PID/comm name a process by the path executed (as the command library does).
  ::execve(self, argv, env);
  // The exec failed: the command library tries again with the same settings.
}

}  // namespace

// Run by the dynamic loader with (argc, argv, envp); only an executable has
// this array. Not under AddressSanitizer, whose runtime initialises from the
// same array (in an order the linker chooses) and must come first: there
// the command library restarts, after the libraries initialised.
#ifndef __SANITIZE_ADDRESS__
__attribute__((section(".preinit_array"), used)) static void (*const docflow_early_restart)(int, char**, char**) =
    restart_before_the_libraries_initialise;
#endif
