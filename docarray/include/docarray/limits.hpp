#pragma once
// Limits on untrusted input, one table for the whole process. Every parser of
// data from outside (document files, JSON Lines, flow files, model files,
// images, texts, network requests) checks its input against these before it
// allocates or recurses, and names the limit in its error, so hostile bytes
// give a clear message instead of a crash, a hang or gigabytes of memory.
// Users raise a limit with `flow ... --input-limit NAME=VALUE`; the names are those
// of `limit_names()`.
#include <cstdint>
#include <string>
#include <vector>

namespace docarray {

struct Limits {
  // Nesting of documents (through chunks and matches) and of tag values
  // (lists in maps in lists ...), in both formats; also of YAML in flow files.
  std::uint32_t depth = 64;
  // Elements of one tensor in a document file (2^31: 8 GiB of float32).
  std::uint64_t tensor_elements = std::uint64_t{1} << 31;
  // Pixels of one decoded image, width x height, as declared by its header:
  // PIL's DecompressionBombError threshold (twice MAX_IMAGE_PIXELS).
  std::uint64_t image_pixels = 2 * 89'478'485;
  // Bytes of one text a tokenizer reads before it stops (the rest cannot reach
  // 77 tokens anyway; see ClipTokenizer).
  std::uint64_t text_bytes = std::uint64_t{1} << 20;
  // Nodes a flow file may expand to after YAML aliases (an alias bomb of a
  // few hundred bytes expands to billions).
  std::uint64_t yaml_nodes = 1'000'000;
  // Bytes of a safetensors header or a config.json read from a model folder.
  std::uint64_t model_header_bytes = std::uint64_t{100} << 20;
};

// The process's limits (read by every parser; set once at start).
Limits& limits();

// The names `set_limit` accepts, each with its current value and a line of
// explanation, for --help and error messages.
std::vector<std::string> limit_names();

// Sets "NAME=VALUE" (VALUE a positive integer); throws docarray::Error naming
// the known limits for an unknown name or a bad value.
void set_limit(const std::string& assignment);

// Throws docarray::Error("field 'FIELD': WHAT nested deeper than the depth
// limit ...") when depth > limits().depth. Both document formats count with
// it, the same way, so that every file one accepts converts to the other.
void check_depth(std::uint32_t depth, const std::string& field, const char* what);

// "the depth limit (64; raise it with --input-limit depth=N)": the phrase errors end with.
std::string limit_hint(const std::string& name);

}  // namespace docarray
