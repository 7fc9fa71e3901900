// The built-in `index` plugin: SimpleIndexer.
#include "docflow/plugin.hpp"
#include "simple_indexer.hpp"

namespace {

using docflow::plugin::at_least;
using docflow::plugin::one_of;
using docflow::plugin::param;

const docflow_param_schema kIndexerParams[] = {
    param("path", "string", "\"\"", "the index log (default: index.log in the executor's workspace)"),
    one_of(param("metric", "string", "\"cosine\"", "cosine, euclidean, sqeuclidean (distances) or dot"),
           "cosine|euclidean|sqeuclidean|dot"),
    at_least(param("limit", "int", "20", "matches per query"), 1),
    param("traversal_path", "string", "\"@r\"", "the documents /index adds"),
    param("query_traversal_path", "string", "\"@r\"", "the documents /search gives matches"),
    param("exclude_fields", "string", "\"\"",
          "fields not stored, comma-separated: tensor, blob, text, uri, tags, chunks (an encoder's input tensor is "
          "rarely worth keeping)"),
    param("match_exclude_fields", "string", "\"\"",
          "fields left out of the matches /search returns, comma-separated: embedding, tensor, blob, text, uri, "
          "tags, chunks"),
};

const docflow_executor_entry kExecutors[] = {
    // One index file, changed in request order: replicas would each hold
    // (and write) their own.
    docflow::plugin::single_instance(
        docflow::plugin::executor<docflow::index::SimpleIndexer>(
            "SimpleIndexer", "a durable index of documents with embeddings: /index, /search, /update, /delete, /clear",
            kIndexerParams),
        "path"),
};

}  // namespace

DOCFLOW_PLUGIN("index", "0.1.0", "SimpleIndexer: documents with embeddings, matched by docarray::match", kExecutors)
