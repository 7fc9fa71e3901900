#pragma once
// x W^T for a Linear layer with a few input rows, in inference. Private to
// the clip library.
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace clip::kernels::detail {

// Whether a product of `rows` input rows of `in` values by `out` weight rows
// goes through few_rows_linear rather than BLAS: a few rows, or up to 2048
// of short ones (inference only: the caller checks that nothing needs a
// gradient).
bool own_product(std::int64_t rows, std::int64_t in, std::int64_t out);

// y[i * ldy + j] = x_i . w_j for the rows of x ([rows, in], contiguous) and
// of w ([out, in], contiguous), the weight rows split over the cores that
// BLAS is configured to use.
void few_rows_product(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y,
                      std::int64_t ldy);

// y = x w^T for a Linear weight `w` ([out, in], contiguous float): weights
// of 256 inputs or fewer (outputs in sixteens, AVX-512) through small_gemm
// over a transposed copy of `w` kept beside it while `w` is unchanged; the
// rest (and a weight made under InferenceMode, which gets no copy) through
// few_rows_product where the row kernel takes the product, BLAS beyond.
void few_rows_linear(const float* x, std::int64_t rows, std::int64_t in, const at::Tensor& w, float* y,
                     std::int64_t ldy);

}  // namespace clip::kernels::detail
