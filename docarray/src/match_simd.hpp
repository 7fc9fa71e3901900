#pragma once
// The inner loops of docarray::match, each compiled for AVX-512, AVX2 + FMA
// and the x86-64 baseline and picked by the CPU it runs on (GCC's
// target_clones at load; score_rows by hand at first use): the library is
// built for any x86-64, and the baseline's 4-wide SSE2 left three quarters
// of this machine's vector width unused in the norm pass, the dot products
// and the top-k filter (bench/RESULTS.md). Internal to docarray.
#include <cstdint>

namespace docarray::detail::simd {

// out[j - j0] = |x_j|^2 for rows j0 <= j < j1 of x (row j at x + j * stride).
void sq_norms(const float* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1, float* out);
void sq_norms(const double* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1, double* out);

// For rows j0 <= j < j1 of x: sims[i * nb + j] = q_i . x_j for each of the
// nq queries (q: [nq, dim] contiguous) and, unless row_sq is null,
// row_sq[j] = |x_j|^2; each row is read from memory once for all of them.
void score_rows(const float* q, std::int64_t nq, const float* x, std::int64_t stride, std::int64_t dim, std::int64_t j0,
                std::int64_t j1, float* sims, std::int64_t nb, float* row_sq);
void score_rows(const double* q, std::int64_t nq, const double* x, std::int64_t stride, std::int64_t dim, std::int64_t j0,
                std::int64_t j1, double* sims, std::int64_t nb, double* row_sq);

// s[j] = s[j] * scale[j] + shift[j] for j < n (a similarity made a key), and
// how many of those keys are greater than t.
std::int64_t keys_above(float* s, const float* scale, const float* shift, std::int64_t n, float t);
std::int64_t keys_above(double* s, const double* scale, const double* shift, std::int64_t n, double t);

// How many of k[0, n) are greater than t (a NaN never is).
std::int64_t count_above(const float* k, std::int64_t n, float t);
std::int64_t count_above(const double* k, std::int64_t n, double t);

}  // namespace docarray::detail::simd
