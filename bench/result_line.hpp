#pragma once
// One line per claim a benchmark makes, beside its own report, for
// scripts/bench.sh to gather into one table (measure, docflow, peer,
// ratio, goal, met):
//
//   RESULT|read a .docs file to a DocumentArray|2.93 GB/s|memcpy 14.1 GB/s|0.21|>= 0.50|NOT MET
//
// `ratio` is the benchmark's own figure of merit against its peer (usually
// docflow's rate over the peer's); `goal` what the issue asks of it, with
// its direction; no goal prints "-" and counts as neither met nor missed.
// Whether it is met is decided here, on the unrounded ratio.
#include <cstdio>
#include <string>

namespace bench {

enum class Goal { AtLeast, AtMost, None };

inline void result(const std::string& measure, const std::string& docflow, const std::string& peer, double ratio,
                   double goal = 0, Goal kind = Goal::AtLeast) {
  if (goal == 0) kind = Goal::None;
  char g[32] = "-";
  if (kind != Goal::None) std::snprintf(g, sizeof g, "%s %.2f", kind == Goal::AtLeast ? ">=" : "<=", goal);
  const char* met = kind == Goal::None ? "-" : (kind == Goal::AtLeast ? ratio >= goal : ratio <= goal) ? "met" : "NOT MET";
  std::printf("RESULT|%s|%s|%s|%.2f|%s|%s\n", measure.c_str(), docflow.c_str(), peer.c_str(), ratio, g, met);
  std::fflush(stdout);
}

// "%.FMTf UNIT" as a string, for the docflow and peer columns.
inline std::string figure(double value, const char* unit, int decimals = 2) {
  char s[64];
  std::snprintf(s, sizeof s, "%.*f %s", decimals, value, unit);
  return s;
}

}  // namespace bench
