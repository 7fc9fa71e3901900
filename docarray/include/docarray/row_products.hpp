#pragma once
// The dot products of every row of one float matrix with every row of
// another, register-blocked and compiled for AVX-512, AVX2 + FMA and the
// x86-64 baseline (picked by the CPU at first use): the kernel behind
// docarray::match for a few queries, shared with the CLIP library, whose
// inference Linear layers with a few input rows (a short text, one image)
// are the same computation (x W^T reads W's rows as match reads an index's).
// It reads each row of b once for all rows of a and packs nothing, where a
// BLAS sgemm copies the whole of b into its own layout first: for 12 rows by
// a 1536 x 512 weight, 230 us against OpenBLAS's 400 (bench/RESULTS.md).
#include <cstdint>

namespace docarray {

// out[i * ldo + j] = a_i . b_j for the na rows of a ([na, dim], contiguous)
// and rows j0 <= j < j1 of b (row j at b + j * b_stride, dim floats).
// Columns of out outside [j0, j1) are not touched: callers split j over
// threads.
void row_products(const float* a, std::int64_t na, const float* b, std::int64_t b_stride, std::int64_t dim,
                  std::int64_t j0, std::int64_t j1, float* out, std::int64_t ldo);

}  // namespace docarray
