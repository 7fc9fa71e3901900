#include "match_simd.hpp"

namespace docarray::detail::simd {
namespace {

// GCC makes one copy of each function below per target and an ifunc that
// picks the widest the CPU has when the library is loaded. Other compilers
// (clang for the fuzzers) build the baseline only.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DOCARRAY_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DOCARRAY_SIMD_CLONES
#endif
#define DOCARRAY_INLINE inline __attribute__((always_inline))

// a . b in 256 bytes of independent sums (four 512-bit or eight 256-bit
// registers): the shape the compiler vectorises without reassociating
// anything itself, with enough chains that the adds' latency does not bound
// it.
template <typename T>
DOCARRAY_INLINE T dot_impl(const T* a, const T* b, std::int64_t n) {
  constexpr int kLanes = 256 / sizeof(T);
  T acc[kLanes] = {};
  std::int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += a[d + k] * b[d + k];
  T tail = 0;
  for (; d < n; ++d) tail += a[d] * b[d];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
  return acc[0] + tail;
}

template <typename T>
DOCARRAY_INLINE void sq_norms_impl(const T* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1, T* out) {
  for (std::int64_t j = j0; j < j1; ++j) out[j - j0] = dot_impl(x + j * stride, x + j * stride, dim);
}

template <typename T>
DOCARRAY_INLINE void score_rows_impl(const T* q, std::int64_t nq, const T* x, std::int64_t stride, std::int64_t dim,
                                     std::int64_t j0, std::int64_t j1, T* sims, std::int64_t nb, T* row_sq) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const T* row = x + j * stride;
    if (row_sq) row_sq[j] = dot_impl(row, row, dim);
    for (std::int64_t i = 0; i < nq; ++i) sims[i * nb + j] = dot_impl(q + i * dim, row, dim);
  }
}

template <typename T>
DOCARRAY_INLINE std::int64_t keys_above_impl(T* s, const T* scale, const T* shift, std::int64_t n, T t) {
  std::int64_t above = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    const T key = s[j] * scale[j] + shift[j];
    s[j] = key;
    above += key > t;
  }
  return above;
}

template <typename T>
DOCARRAY_INLINE std::int64_t count_above_impl(const T* k, std::int64_t n, T t) {
  std::int64_t above = 0;
  for (std::int64_t j = 0; j < n; ++j) above += k[j] > t;
  return above;
}

}  // namespace

DOCARRAY_SIMD_CLONES float dot(const float* a, const float* b, std::int64_t n) { return dot_impl(a, b, n); }
DOCARRAY_SIMD_CLONES double dot(const double* a, const double* b, std::int64_t n) { return dot_impl(a, b, n); }

DOCARRAY_SIMD_CLONES void sq_norms(const float* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1,
                                   float* out) {
  sq_norms_impl(x, stride, dim, j0, j1, out);
}
DOCARRAY_SIMD_CLONES void sq_norms(const double* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1,
                                   double* out) {
  sq_norms_impl(x, stride, dim, j0, j1, out);
}

DOCARRAY_SIMD_CLONES void score_rows(const float* q, std::int64_t nq, const float* x, std::int64_t stride, std::int64_t dim,
                                     std::int64_t j0, std::int64_t j1, float* sims, std::int64_t nb, float* row_sq) {
  score_rows_impl(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
}
DOCARRAY_SIMD_CLONES void score_rows(const double* q, std::int64_t nq, const double* x, std::int64_t stride, std::int64_t dim,
                                     std::int64_t j0, std::int64_t j1, double* sims, std::int64_t nb, double* row_sq) {
  score_rows_impl(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
}

DOCARRAY_SIMD_CLONES std::int64_t keys_above(float* s, const float* scale, const float* shift, std::int64_t n, float t) {
  return keys_above_impl(s, scale, shift, n, t);
}
DOCARRAY_SIMD_CLONES std::int64_t keys_above(double* s, const double* scale, const double* shift, std::int64_t n, double t) {
  return keys_above_impl(s, scale, shift, n, t);
}

DOCARRAY_SIMD_CLONES std::int64_t count_above(const float* k, std::int64_t n, float t) { return count_above_impl(k, n, t); }
DOCARRAY_SIMD_CLONES std::int64_t count_above(const double* k, std::int64_t n, double t) { return count_above_impl(k, n, t); }

}  // namespace docarray::detail::simd
