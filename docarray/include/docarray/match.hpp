#pragma once
// Nearest-neighbour matching of embeddings, as DocArray's `da.match(...)`:
// batched matrix products on BLAS and a running top-k, so that an index of
// any size is matched in memory bounded by `batch_size`.
#include <cstddef>
#include <string>

#include "docarray/document.hpp"

namespace docarray {

class BinaryReader;

struct MatchOptions {
  // "cosine" (1 - cosine similarity), "euclidean", "sqeuclidean": distances,
  // ascending. "dot": the inner product, a similarity, descending.
  std::string metric = "cosine";
  std::size_t limit = 20;
  bool exclude_self = false;      // drop index documents whose id is the query's
  std::size_t batch_size = 4096;  // index rows per matrix product (a 1,000-query block of scores, 16 MB, stays in cache better than 16,384: bench_match 0.87 -> 0.93-0.99 of FAISS)
  std::string query_path = "@r";  // which documents of `queries` get matches
  std::string index_path = "@r";  // which documents of `index` are candidates
  std::string metric_name;        // the scores key; defaults to `metric`
};

// Appends to each selected query, in order, up to `limit` matches: copies of
// index documents without their own matches, with
// scores[metric_name] = {value, op_name = metric, ref_id = query id}.
// Throws docarray::Error for an unknown metric, a missing embedding or
// mismatched dimensions.
void match(DocumentArray& queries, const DocumentArray& index, const MatchOptions& options = {});

// The same against embeddings stacked beforehand: `index_embeddings` is a
// contiguous CPU [n, dim] tensor whose row i is the embedding of
// index.traverse_flat(options.index_path)[i]. An index that answers many
// queries (SimpleIndexer) keeps it, instead of gathering every row on every
// query. Throws docarray::Error when its shape does not fit.
void match(DocumentArray& queries, const DocumentArray& index, const at::Tensor& index_embeddings,
           const MatchOptions& options = {});

// The embeddings of docs.traverse_flat(traversal) as one [n, dim] matrix
// over their own memory, with no row copied, where they lie that way:
// documents read from one mapped binary file whose records share a layout
// (one embedding per document, as an index writes them). Rows are
// contiguous, the row distance is the record's size (stride(0) >= dim).
// Undefined otherwise. match() uses it by itself when no matrix is given.
at::Tensor embeddings_in_place(const DocumentArray& docs, const std::string& traversal = "@r");

// An index larger than memory: matched as it is read from `index`, block by
// block (options.batch_size documents at a time). What stays in memory is
// one block, each query's running top-k and copies of the documents in it,
// whatever the index's size; the matches are those match() gives over the
// whole index read at once (the same ids, order and scores, up to float
// rounding of the products). `index` is left at its end.
void match(DocumentArray& queries, BinaryReader& index, const MatchOptions& options = {});

// The same over a binary document file (.docs), read as a stream rather than
// mapped, so that its size does not count against memory. Errors name the
// file (and, for damage, the record).
void match_file(DocumentArray& queries, const std::string& index_file, const MatchOptions& options = {});

}  // namespace docarray
