// Executors for the pipeline benchmark: a source of one-document requests
// and an executor whose handler does nothing.
#include "docflow/plugin.hpp"

namespace {

class OneDocSource : public docflow::Source {
 public:
  explicit OneDocSource(docflow::ExecutorContext c) : Source(std::move(c)), n_(params().get_int("n")) {}
  std::optional<Item> next() override {
    if (i_ >= n_) return std::nullopt;
    ++i_;
    Item item;
    item.docs.append(docarray::Document(std::string("d")));
    return item;
  }

 private:
  std::int64_t n_, i_ = 0;
};

// Binds a handler that does nothing, so that the runtime really calls the
// executor on its strand for every request (an unbound executor would be
// passed through, which is not what the benchmark measures).
class Nothing : public docflow::Executor {
 public:
  explicit Nothing(docflow::ExecutorContext c) : Executor(std::move(c)) {
    on("*", [](docflow::Request&) {});
  }
};

const docflow_param_schema kSourceParams[] = {docflow::plugin::param("n", "int", "100000", "requests")};
const docflow_executor_entry kExecutors[] = {
    docflow::plugin::executor<OneDocSource>("OneDocSource", "n requests of one document", kSourceParams),
    docflow::plugin::executor<Nothing>("Nothing", "does nothing"),
};

}  // namespace

DOCFLOW_PLUGIN("bench", "1.0.0", "benchmark executors", kExecutors)
