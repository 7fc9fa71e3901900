// A complete docflow plugin: one executor that upper-cases the text of the
// documents it receives (at a traversal path), and a counter tag.
#include <cctype>

#include <docflow/plugin.hpp>

namespace {

class UpperCase : public docflow::Executor {
 public:
  explicit UpperCase(docflow::ExecutorContext context) : Executor(std::move(context)) {
    // Bind the handler to every endpoint; on("/index", ...) would bind one.
    on("*", [this](docflow::Request& request) {
      for (docarray::Document* doc : request.docs.traverse_flat(params().get_string("traversal_path"))) {
        for (char& c : doc->text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        doc->tags["upper_cased_by"] = name();
      }
      seen_ += request.docs.size();
    });
  }

  void close() override { log().info(name(), "upper-cased " + std::to_string(seen_) + " documents"); }

 private:
  std::size_t seen_ = 0;
};

using docflow::plugin::param;

const docflow_param_schema kParams[] = {
    param("traversal_path", "string", "\"@r\"", "which documents to change: @r, @c, @r,c, ..."),
};

const docflow_executor_entry kExecutors[] = {
    docflow::plugin::executor<UpperCase>("UpperCase", "upper-cases the text of documents", kParams),
};

}  // namespace

DOCFLOW_PLUGIN("upper-case", "1.0.0", "an example plugin built out of tree", kExecutors)
