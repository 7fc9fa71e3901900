#include "small_gemm.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CLIP_SMALL_GEMM 1
#endif

namespace clip::kernels::detail {

#ifdef CLIP_SMALL_GEMM

namespace {

#define CLIP_AVX512 __attribute__((target("avx512f")))

// One MR x (16 NV) block of C over p in [p0, p1): MR * NV accumulators (24
// of the 32 registers at 6 x 4), per p one load of each B vector and one
// broadcast of each A element.
template <int MR, int NV>
CLIP_AVX512 void block(const SmallGemm& g, std::int64_t i, std::int64_t j, std::int64_t p0, std::int64_t p1) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const float* a = g.a + i * g.a_row;
  const float* b = g.b + j;
  for (std::int64_t p = p0; p < p1; ++p) {
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + p * g.ldb + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * g.a_row + p * g.a_col]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  const __m512 alpha = _mm512_set1_ps(g.alpha);
  float* c = g.c + i * g.ldc + j;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * g.ldc + 16 * v, _mm512_mul_ps(acc[r][v], alpha));
}

using BlockFn = void (*)(const SmallGemm&, std::int64_t, std::int64_t, std::int64_t, std::int64_t);

constexpr int kRows = 6, kVectors = 4;

template <int MR, int... NV>
constexpr std::array<BlockFn, sizeof...(NV)> row_of_blocks(std::integer_sequence<int, NV...>) {
  return {&block<MR, NV + 1>...};
}

template <int... MR>
constexpr std::array<std::array<BlockFn, kVectors>, sizeof...(MR)> table_of_blocks(std::integer_sequence<int, MR...>) {
  return {row_of_blocks<MR + 1>(std::make_integer_sequence<int, kVectors>())...};
}

// blocks[mr - 1][nv - 1]
constexpr auto blocks = table_of_blocks(std::make_integer_sequence<int, kRows>());

}  // namespace

bool small_gemm_available() { return __builtin_cpu_supports("avx512f"); }

void small_gemm(const SmallGemm& g) {
  for (std::int64_t i = 0; i < g.m; i += kRows) {
    const std::int64_t mr = std::min<std::int64_t>(kRows, g.m - i), last = i + mr - 1;
    std::int64_t p0 = 0, p1 = g.k;
    if (g.a_zeros == SmallGemm::Zeros::after_diagonal) p1 = std::min(p1, last + 1);
    if (g.a_zeros == SmallGemm::Zeros::before_diagonal) p0 = std::min(p1, i);
    const std::int64_t n = g.lower_c_only ? std::min(g.n, (last / 16 + 1) * 16) : g.n;
    for (std::int64_t j = 0; j < n; j += 16 * kVectors) {
      const std::int64_t nv = std::min<std::int64_t>(kVectors, (n - j) / 16);
      blocks[mr - 1][nv - 1](g, i, j, p0, p1);
    }
  }
}

#else

bool small_gemm_available() { return false; }
void small_gemm(const SmallGemm&) { throw std::logic_error("small_gemm called where small_gemm_available() is false"); }

#endif

}  // namespace clip::kernels::detail
