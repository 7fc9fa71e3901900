// Requests of one document through a chain of three executors that do
// nothing, in one process; side by side with GStreamer's
//   gst-launch-1.0 fakesrc num-buffers=N sizetype=empty ! queue ! identity !
//   queue ! identity ! queue ! identity ! fakesink sync=false
// printing both rates and their ratio.
//   bench_pipeline [N=200000] [PREFETCH=64]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "docflow/flow.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  const int prefetch = argc > 2 ? std::atoi(argv[2]) : 64;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  std::string yaml = "jtype: Flow\nwith:\n  threads: " + std::to_string(threads) + "\n  prefetch: " + std::to_string(prefetch) +
                     "\n  plugins: [" BENCH_PLUGIN_DIR "]\nexecutors:\n"
                     "  - {name: source, uses: OneDocSource, with: {n: " + std::to_string(n) + "}}\n"
                     "  - {name: a, uses: Nothing}\n  - {name: b, uses: Nothing}\n  - {name: c, uses: Nothing}\n";
  docflow::Flow flow = docflow::Flow::from_config(docflow::parse_flow_text(yaml, "bench.yml"));
  docflow::Logger quiet;
  quiet.set_terminal(false);
  flow.open({}, &quiet);
  auto t0 = Clock::now();
  docflow::RunStats stats = flow.run();
  double ours = std::chrono::duration<double>(Clock::now() - t0).count();
  flow.close();
  std::printf("docflow   %ld requests through 3 executors in %.3f s: %.0f requests/s (prefetch %d)\n",
              static_cast<long>(stats.requests), ours, stats.requests / ours, prefetch);

  std::string gst = "gst-launch-1.0 -q fakesrc num-buffers=" + std::to_string(n) +
                    " sizetype=empty ! queue ! identity ! queue ! identity ! queue ! identity ! fakesink sync=false"
                    " > /dev/null 2>&1";
  t0 = Clock::now();
  int rc = std::system(gst.c_str());
  double theirs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (rc != 0) {
    std::printf("gstreamer: gst-launch-1.0 failed (apt-get install gstreamer1.0-tools)\n");
    return 1;
  }
  std::printf("gstreamer %ld buffers through 3 identity elements in %.3f s: %.0f buffers/s (process start included)\n",
              n, theirs, n / theirs);
  std::printf("ratio docflow/gstreamer = %.2f (>= 1: docflow at least as fast)\n", (stats.requests / ours) / (n / theirs));
  return 0;
}
