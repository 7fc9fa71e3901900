// The built-in `io` plugin: reading and writing document files.
#include "docflow/plugin.hpp"
#include "document_reader.hpp"
#include "document_writer.hpp"

namespace {

using docflow::plugin::at_least;
using docflow::plugin::one_of;
using docflow::plugin::param;

const docflow_param_schema kReaderParams[] = {
    param("path", "string", nullptr,
          "a document file (binary or JSON Lines), or a glob of image files such as images/*.png"),
    at_least(param("batch_size", "int", "32", "documents per request"), 1),
    at_least(param("epochs", "int", "1", "passes over the data"), 1),
    param("shuffle", "bool", "false", "shuffle every epoch (holds all documents in memory)"),
    param("seed", "int", "0", "the shuffle's seed: the same seed gives the same order"),
    param("limit", "int", "-1", "documents per epoch at most (-1: all)"),
    param("endpoint", "string", "\"/index\"", "the endpoint the requests are posted to"),
};

const docflow_param_schema kWriterParams[] = {
    param("path", "string", nullptr, "the output file: .jsonl for JSON Lines, anything else binary"),
    one_of(param("compress", "string", "\"none\"", "zstd compression of the binary format"), "none|zstd"),
};

const docflow_executor_entry kExecutors[] = {
    docflow::plugin::executor<docflow::io::DocumentReader>(
        "DocumentReader", "reads documents from a file or a glob of images (the source of a batch run)", kReaderParams),
    // One file, written in the order the documents arrive: replicas would
    // each open (and truncate) it.
    docflow::plugin::single_instance(
        docflow::plugin::executor<docflow::io::DocumentWriter>(
            "DocumentWriter", "writes every document that reaches it to a file, streaming", kWriterParams),
        "path"),
};

}  // namespace

DOCFLOW_PLUGIN("io", "0.1.0", "reading and writing document files", kExecutors)
