#pragma once
// x W^T for a Linear layer with a few input rows, in inference. Private to
// the clip library.
#include <cstdint>

namespace clip::kernels::detail {

// Whether a product of `rows` input rows of `in` values goes through
// row_products rather than BLAS (inference only: the caller checks that
// nothing needs a gradient).
bool few_rows(std::int64_t rows, std::int64_t in);

// y[i * ldy + j] = x_i . w_j for the rows of x ([rows, in], contiguous) and
// of w ([out, in], contiguous), the weight rows split over the cores that
// BLAS is configured to use.
void few_rows_product(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y,
                      std::int64_t ldy);

}  // namespace clip::kernels::detail
