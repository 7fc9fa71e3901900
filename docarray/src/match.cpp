#include "docarray/match.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <vector>

#include "docarray/error.hpp"
#include "match_kernels.hpp"

namespace docarray {
namespace {

using namespace detail;

template <typename T>
void run(Metric metric, std::vector<Document*>& qdocs, const std::vector<const Document*>& xdocs,
         const MatchOptions& opt, const std::string& name, at::ScalarType type, std::int64_t dim,
         const at::Tensor* stacked) {
  Scorer<T> scorer(metric, qdocs, opt, type, dim);
  // One block buffer for the whole run: a fresh 32 MB tensor per block would
  // page-fault its way in every time.
  const auto block = static_cast<std::int64_t>(std::min(opt.batch_size, xdocs.size()));
  // Rows stacked beforehand are used in place when they are of the type matched in.
  const bool in_place = stacked != nullptr && stacked->scalar_type() == type;
  at::Tensor x_buffer = in_place ? at::Tensor() : at::empty({block, dim}, at::TensorOptions().dtype(type));
  for (std::size_t start = 0; start < xdocs.size(); start += opt.batch_size) {
    std::size_t stop = std::min(xdocs.size(), start + opt.batch_size);
    at::Tensor x = in_place ? stacked->narrow(0, static_cast<std::int64_t>(start), static_cast<std::int64_t>(stop - start))
                            : stacked != nullptr
                                ? stacked->narrow(0, static_cast<std::int64_t>(start), static_cast<std::int64_t>(stop - start)).to(type)
                                : stack_rows(xdocs, start, stop, x_buffer, "index");
    scorer.offer(x, static_cast<std::int64_t>(start));
  }
  scorer.write(name, [&](std::int64_t i) -> const Document& { return *xdocs[static_cast<std::size_t>(i)]; });
}

}  // namespace

namespace {

// The index embeddings as one [n, dim] matrix without copying a row, where
// they already lie that way: documents read from one mapped version-2 file,
// each embedding aliasing the file at a constant distance from the previous
// (records of one layout). BLAS takes the distance as the matrix's leading
// dimension. Undefined when they do not.
at::Tensor rows_in_place(const std::vector<const Document*>& docs, std::int64_t dim) {
  if (docs.size() < 2) return {};
  const at::Tensor& first = docs[0]->embedding;
  if (!first.defined() || !first.device().is_cpu() || first.dim() != 1 || first.numel() != dim ||
      (first.scalar_type() != at::kFloat && first.scalar_type() != at::kDouble) || !first.is_contiguous())
    return {};
  if (!docs[1]->embedding.defined()) return {};
  const auto* base = static_cast<const char*>(first.data_ptr());
  const c10::StorageImpl* storage = first.storage().unsafeGetStorageImpl();
  const std::ptrdiff_t step = static_cast<const char*>(docs[1]->embedding.data_ptr()) - base;
  const auto element = static_cast<std::ptrdiff_t>(first.element_size());
  if (step < dim * element || step % element != 0) return {};
  // Each document and its tensor are two cache misses (a pointer chase), so
  // the walk is split over the BLAS threads and fetches a few documents
  // ahead: 100k documents took 8-10 ms on one thread without prefetching
  // (as long as a 32-query match's product), 4-5 ms with, 2-4 ms on two threads.
  constexpr std::size_t kAhead = 8;
  std::atomic<bool> aliased{true};
  split_range(static_cast<std::int64_t>(docs.size()) - 1, 16384, [&](std::int64_t begin, std::int64_t end) {
    const auto last = static_cast<std::size_t>(end) + 1;
    for (auto i = static_cast<std::size_t>(begin) + 1; i < last && aliased.load(std::memory_order_relaxed); ++i) {
      if (i + 2 * kAhead < last) __builtin_prefetch(docs[i + 2 * kAhead]);
      if (i + kAhead < last) __builtin_prefetch(docs[i + kAhead]->embedding.unsafeGetTensorImpl());
      const at::Tensor& e = docs[i]->embedding;
      if (!e.defined() || e.storage().unsafeGetStorageImpl() != storage || e.scalar_type() != first.scalar_type() ||
          e.dim() != 1 || e.numel() != dim || !e.is_contiguous() ||
          static_cast<const char*>(e.data_ptr()) != base + static_cast<std::ptrdiff_t>(i) * step)
        aliased.store(false, std::memory_order_relaxed);
    }
  });
  if (!aliased.load()) return {};
  return first.as_strided({static_cast<std::int64_t>(docs.size()), dim}, {step / element, 1}, first.storage_offset());
}

void match_impl(DocumentArray& queries, const DocumentArray& index, const at::Tensor* stacked, const MatchOptions& opt) {
  const Metric metric = parse_metric(opt.metric);
  if (opt.limit == 0) throw Error("match: limit must be at least 1");
  if (opt.batch_size == 0) throw Error("match: batch_size must be at least 1");
  const std::string name = opt.metric_name.empty() ? opt.metric : opt.metric_name;

  std::vector<Document*> qdocs = queries.traverse_flat(opt.query_path);
  std::vector<const Document*> xdocs = index.traverse_flat(opt.index_path);
  if (qdocs.empty() || xdocs.empty()) return;
  const at::Tensor& first = qdocs.front()->embedding;
  if (!first.defined()) throw Error("match: query document '" + qdocs.front()->id + "' has no embedding");
  if (stacked != nullptr) {
    const at::Tensor& x = *stacked;
    if (x.defined() && x.dim() == 2 && x.size(1) != first.numel()) {
      std::ostringstream msg;
      msg << "match: query document '" << qdocs.front()->id << "' has an embedding of " << first.numel()
          << " values, the index's have " << x.size(1);
      throw Error(msg.str());
    }
    if (!x.defined() || x.dim() != 2 || x.size(0) != static_cast<std::int64_t>(xdocs.size()) || x.size(1) != first.numel() ||
        !x.is_contiguous() || !x.device().is_cpu()) {
      std::ostringstream msg;
      msg << "match: the stacked index embeddings are " << (x.defined() ? x.sizes() : at::IntArrayRef{})
          << ", expected a contiguous CPU [" << xdocs.size() << ", " << first.numel() << "] (one row per index document)";
      throw Error(msg.str());
    }
  }

  at::NoGradGuard no_grad;
  at::Tensor in_place;  // an index read from a file, matched where it lies
  if (stacked == nullptr && (in_place = rows_in_place(xdocs, first.numel())).defined()) stacked = &in_place;
  // Double embeddings are matched in double, everything else in float32.
  if (first.scalar_type() == at::kDouble) run<double>(metric, qdocs, xdocs, opt, name, at::kDouble, first.numel(), stacked);
  else run<float>(metric, qdocs, xdocs, opt, name, at::kFloat, first.numel(), stacked);
}

}  // namespace

at::Tensor embeddings_in_place(const DocumentArray& docs, const std::string& traversal) {
  std::vector<const Document*> flat = docs.traverse_flat(traversal);
  if (flat.empty() || !flat.front()->embedding.defined()) return {};
  return rows_in_place(flat, flat.front()->embedding.numel());
}

void match(DocumentArray& queries, const DocumentArray& index, const MatchOptions& opt) {
  match_impl(queries, index, nullptr, opt);
}

void match(DocumentArray& queries, const DocumentArray& index, const at::Tensor& index_embeddings, const MatchOptions& opt) {
  match_impl(queries, index, &index_embeddings, opt);
}

}  // namespace docarray
