// Requests of one document through a chain of three executors that do
// nothing, in one process; side by side with GStreamer's
//   gst-launch-1.0 fakesrc num-buffers=N sizetype=empty ! queue ! identity !
//   queue ! identity ! queue ! identity ! fakesink sync=false
// printing both rates and their ratio, RUNS times in alternation (the goal
// is to be ahead on every run, so the worst ratio is the one reported).
//   bench_pipeline [N=200000] [PREFETCH=64] [THREADS=0: one per core] [RUNS=1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "docflow/flow.hpp"
#include "result_line.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  const int prefetch = argc > 2 ? std::atoi(argv[2]) : 64;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  const int runs = argc > 4 ? std::max(1, std::atoi(argv[4])) : 1;
  std::string yaml = "jtype: Flow\nwith:\n  threads: " + std::to_string(threads) + "\n  prefetch: " + std::to_string(prefetch) +
                     "\n  plugins: [" BENCH_PLUGIN_DIR "]\nexecutors:\n"
                     "  - {name: source, uses: OneDocSource, with: {n: " + std::to_string(n) + "}}\n"
                     "  - {name: a, uses: Nothing}\n  - {name: b, uses: Nothing}\n  - {name: c, uses: Nothing}\n";
  const std::string gst = "gst-launch-1.0 -q fakesrc num-buffers=" + std::to_string(n) +
                          " sizetype=empty ! queue ! identity ! queue ! identity ! queue ! identity ! fakesink sync=false"
                          " > /dev/null 2>&1";
  std::vector<double> ours_rates, their_rates, ratios;
  for (int run = 0; run < runs; ++run) {
    docflow::Flow flow = docflow::Flow::from_config(docflow::parse_flow_text(yaml, "bench.yml"));
    docflow::Logger quiet;
    quiet.set_terminal(false);
    flow.open({}, &quiet);
    auto t0 = Clock::now();
    docflow::RunStats stats = flow.run();
    const double ours = std::chrono::duration<double>(Clock::now() - t0).count();
    flow.close();
    std::printf("docflow   %ld requests through 3 executors in %.3f s: %.0f requests/s (prefetch %d)\n",
                static_cast<long>(stats.requests), ours, stats.requests / ours, prefetch);

    t0 = Clock::now();
    const int rc = std::system(gst.c_str());
    const double theirs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rc != 0) {
      std::printf("gstreamer: gst-launch-1.0 failed (apt-get install gstreamer1.0-tools)\n");
      return 1;
    }
    std::printf("gstreamer %ld buffers through 3 identity elements in %.3f s: %.0f buffers/s (process start included)\n", n,
                theirs, n / theirs);
    ours_rates.push_back(stats.requests / ours);
    their_rates.push_back(n / theirs);
    ratios.push_back(ours_rates.back() / their_rates.back());
    std::printf("ratio docflow/gstreamer = %.2f (>= 1: docflow at least as fast)\n", ratios.back());
  }
  std::vector<double> sorted = ratios;
  std::sort(sorted.begin(), sorted.end());
  if (runs > 1)
    std::printf("ratio over %d runs: min %.2f, median %.2f, max %.2f\n", runs, sorted.front(), sorted[sorted.size() / 2],
                sorted.back());
  const std::size_t worst = static_cast<std::size_t>(std::min_element(ratios.begin(), ratios.end()) - ratios.begin());
  bench::result("3 no-op executors, 1-document requests (worst of " + std::to_string(runs) + " runs)",
                bench::figure(ours_rates[worst], "req/s", 0), "GStreamer " + bench::figure(their_rates[worst], "buffers/s", 0),
                ratios[worst], 1.0);
  return 0;
}
