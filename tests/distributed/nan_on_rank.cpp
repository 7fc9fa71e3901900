// A test executor for distributed runs: on one rank only, at its Nth
// request, it turns one example's image embedding into NaN (keeping the
// autograd graph), as a bad input or an overflow on one machine would.
#include <ATen/ATen.h>

#include <limits>

#include "docflow/plugin.hpp"

namespace {

class NanOnRank : public docflow::Executor {
 public:
  explicit NanOnRank(docflow::ExecutorContext c) : Executor(std::move(c)) {
    on("*", [this](docflow::Request& r) {
      if (group().rank() != params().get_int("rank") || ++requests_ != params().get_int("at_request")) return;
      for (auto& pair : r.docs)
        for (auto& chunk : pair.chunks)
          if (chunk.modality == "image" && chunk.embedding.defined()) {
            chunk.embedding = chunk.embedding * std::numeric_limits<float>::quiet_NaN();
            return;
          }
    });
  }

 private:
  std::int64_t requests_ = 0;
};

using docflow::plugin::at_least;
using docflow::plugin::param;

const docflow_param_schema kParams[] = {at_least(param("rank", "int", "1", "the rank that goes wrong"), 0),
                                        at_least(param("at_request", "int", "1", "on its request number"), 1)};
const docflow_executor_entry kExecutors[] = {
    docflow::plugin::executor<NanOnRank>("NanOnRank", "a NaN embedding on one rank's Nth request", kParams),
};

}  // namespace

DOCFLOW_PLUGIN("distributed_testing", "1.0.0", "executors for docflow's distributed tests", kExecutors)
