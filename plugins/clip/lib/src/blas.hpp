#pragma once
// sgemm through CBLAS, for the kernels that need what ATen's mm does not
// offer: operands and results addressed with their own row strides, in place
// inside larger matrices. Private to the clip library.
#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>

#include <cstdint>

namespace clip::kernels::detail {

// Row-major C[m x n] = alpha op(A) op(B) + beta C with the leading dimensions
// given, so that a block of columns inside a wider row-major matrix (one
// attention head, one of q, k, v) is read or written where it lies.
inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// OpenBLAS's thread setting: the cores the process's products may use.
// Looked up at run time, as libblas.so.3 may be another BLAS (which counts
// as one thread and is not set).
inline int blas_threads() {
  using Get = int (*)();
  static const Get get = reinterpret_cast<Get>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? std::max(1, get()) : 1;
}

inline void set_blas_threads(int threads) {
  using Set = void (*)(int);
  static const Set set = reinterpret_cast<Set>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set) set(threads);
}

}  // namespace clip::kernels::detail
