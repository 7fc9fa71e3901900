#include "docarray/row_products.hpp"

#include "match_simd.hpp"

namespace docarray {

void row_products(const float* a, std::int64_t na, const float* b, std::int64_t b_stride, std::int64_t dim,
                  std::int64_t j0, std::int64_t j1, float* out, std::int64_t ldo) {
  detail::simd::score_rows(a, na, b, b_stride, dim, j0, j1, out, ldo, nullptr);
}

}  // namespace docarray
