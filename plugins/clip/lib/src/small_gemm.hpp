#pragma once
// A matrix product for the attention's per-head matrices (77 x 77 x 64 for
// CLIP's text tower), held in AVX-512 registers (6 rows x 64 columns of C at a
// time), reading A through any pair of strides (so A^T costs nothing) and
// skipping the zero triangle of causal attention, which a BLAS call cannot:
// about half of the text tower's attention products. Private to the clip
// library.
#include <cstdint>

namespace clip::kernels::detail {

// C[m x n] = alpha A B. A(i, p) = a[i * a_row + p * a_col]; B(p, j) =
// b[p * ldb + j]; C(i, j) = c[i * ldc + j]; n a multiple of 16 (callers pad),
// every B row readable for n columns.
struct SmallGemm {
  std::int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  std::int64_t a_row = 0, a_col = 1;
  const float* b = nullptr;
  std::int64_t ldb = 0;
  float* c = nullptr;
  std::int64_t ldc = 0;
  float alpha = 1;
  // Causal structure, so that known zeros are not multiplied:
  enum class Zeros {
    none,
    after_diagonal,   // A(i, p) = 0 for p > i: row i needs p <= i only
    before_diagonal,  // A(i, p) = 0 for p < i: row i needs p >= i only
  } a_zeros = Zeros::none;
  // Only C(i, j) for j <= i are wanted (the rest is left undefined: causal
  // scores that the softmax then sets to 0).
  bool lower_c_only = false;
};

// Whether this CPU runs the kernel (AVX-512F); callers keep a BLAS path.
bool small_gemm_available();

void small_gemm(const SmallGemm& g);

}  // namespace clip::kernels::detail
