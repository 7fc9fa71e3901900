// docarray::match over an index read block by block (match.hpp).
#include <ATen/ATen.h>

#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "docarray/binary_io.hpp"
#include "docarray/match.hpp"
#include "match_kernels.hpp"

namespace docarray {
namespace {

using namespace detail;

template <typename T>
void run_stream(Metric metric, std::vector<Document*>& qdocs, BinaryReader& index, const MatchOptions& opt,
                const std::string& name, at::ScalarType type, std::int64_t dim) {
  Scorer<T> scorer(metric, qdocs, opt, type, dim);
  // The documents some query's top-k holds, by their row among all the
  // index rows: at most queries x want of them at any time.
  std::unordered_map<std::int64_t, Document> kept;
  std::unordered_set<std::int64_t> held;
  at::Tensor x_buffer;
  std::int64_t offset = 0;
  DocumentArray block;
  while (true) {
    block.clear();
    while (block.size() < opt.batch_size && index.append_next(block)) {
    }
    if (block.empty()) break;
    std::vector<const Document*> xdocs = const_cast<const DocumentArray&>(block).traverse_flat(opt.index_path);
    if (xdocs.empty()) continue;
    const auto rows = static_cast<std::int64_t>(xdocs.size());
    if (!x_buffer.defined() || x_buffer.size(0) < rows) x_buffer = at::empty({rows, dim}, at::TensorOptions().dtype(type));
    scorer.offer(stack_rows(xdocs, 0, xdocs.size(), x_buffer, "index"), offset);
    // Keep the block's documents that made some top-k; forget the ones
    // pushed out of every top-k.
    held.clear();
    for (std::int64_t qi = 0; qi < scorer.nq; ++qi)
      for (std::int64_t j = 0; j < scorer.best_size[qi]; ++j) {
        const std::int64_t row = scorer.best_idx[qi * scorer.want + j];
        held.insert(row);
        if (row >= offset && !kept.count(row)) {
          Document copy = *xdocs[static_cast<std::size_t>(row - offset)];
          copy.matches.clear();
          kept.emplace(row, std::move(copy));
        }
      }
    for (auto it = kept.begin(); it != kept.end();) it = held.count(it->first) ? std::next(it) : kept.erase(it);
    offset += rows;
  }
  scorer.write(name, [&](std::int64_t row) -> const Document& { return kept.at(row); });
}

}  // namespace

void match(DocumentArray& queries, BinaryReader& index, const MatchOptions& opt) {
  const Metric metric = parse_metric(opt.metric);
  if (opt.limit == 0) throw Error("match: limit must be at least 1");
  if (opt.batch_size == 0) throw Error("match: batch_size must be at least 1");
  const std::string name = opt.metric_name.empty() ? opt.metric : opt.metric_name;
  std::vector<Document*> qdocs = queries.traverse_flat(opt.query_path);
  if (qdocs.empty()) return;
  const at::Tensor& first = qdocs.front()->embedding;
  if (!first.defined()) throw Error("match: query document '" + qdocs.front()->id + "' has no embedding");
  at::NoGradGuard no_grad;
  // Double embeddings are matched in double, everything else in float32 (as match()).
  if (first.scalar_type() == at::kDouble) run_stream<double>(metric, qdocs, index, opt, name, at::kDouble, first.numel());
  else run_stream<float>(metric, qdocs, index, opt, name, at::kFloat, first.numel());
}

void match_file(DocumentArray& queries, const std::string& index_file, const MatchOptions& opt) {
  std::ifstream in(index_file, std::ios::binary);
  if (!in) throw Error("match_file: cannot open " + index_file);
  if (!is_binary_file(index_file))
    throw Error("match_file: " + index_file + " is not a binary document file (.docs); load a JSON Lines index and use match()");
  BinaryReader reader(in, index_file);
  match(queries, reader, opt);
}

}  // namespace docarray
