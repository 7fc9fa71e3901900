#include "match_simd.hpp"

#include <cstring>

namespace docarray::detail::simd {
namespace {

// GCC makes one copy of each function marked with this per target, and an ifunc that
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

// score_rows, register-blocked: R index rows by Q queries at a time, each
// pair's partial sums in one vector V, so that every load of a row's values
// serves Q products and every load of a query's serves R (a dot product per
// pair loads two values per multiply-add and is bound by the loads). V is a
// GCC vector type: the target each copy is compiled for decides how many
// registers one V takes, and R and Q are chosen per target to fit them.
template <typename V, typename T>
DOCARRAY_INLINE V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// GCC's vector types of Bytes bytes (spelled per type: the attribute does not
// apply to a template parameter).
template <typename T, int Bytes>
struct VecOf;
template <> struct VecOf<float, 16> { typedef float type __attribute__((vector_size(16))); };
template <> struct VecOf<float, 32> { typedef float type __attribute__((vector_size(32))); };
template <> struct VecOf<float, 64> { typedef float type __attribute__((vector_size(64))); };
template <> struct VecOf<double, 16> { typedef double type __attribute__((vector_size(16))); };
template <> struct VecOf<double, 32> { typedef double type __attribute__((vector_size(32))); };
template <> struct VecOf<double, 64> { typedef double type __attribute__((vector_size(64))); };
template <typename T, int Bytes>
using Vec = typename VecOf<T, Bytes>::type;

// The sum of a vector's lanes, by halves (a 512-bit vector: its two 256-bit
// halves added, then 128-bit ones, then four lanes): in registers, where
// storing it and adding the lanes one by one went through memory.
template <typename T, typename V>
DOCARRAY_INLINE T lane_sum(V v) {
  if constexpr (sizeof(V) > 16) {
    using Half = Vec<T, static_cast<int>(sizeof(V) / 2)>;
    Half lo, hi;
    std::memcpy(&lo, &v, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
    return lane_sum<T>(lo + hi);
  } else {
    T sum = 0;
    for (int k = 0; k < static_cast<int>(sizeof(V) / sizeof(T)); ++k) sum += v[k];
    return sum;
  }
}

// Rows j..j+R of x against queries q[0, Q) (q and sims already offset to the
// first of them); with Norm, the rows' squared norms too; with Ahead > 0, a
// prefetch of the rows Ahead groups further, one cache line per row and step.
template <typename T, typename V, int R, int Q, bool Norm, int Ahead>
DOCARRAY_INLINE void tile(const T* q, std::int64_t dim, const T* x, std::int64_t stride, std::int64_t j, T* sims,
                          std::int64_t nb, T* row_sq) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  V acc[R][Q] = {};
  V norm[R] = {};
  const T* row[R];
  for (int r = 0; r < R; ++r) row[r] = x + (j + r) * stride;
  std::int64_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) {
    V xv[R];
    for (int r = 0; r < R; ++r) xv[r] = load<V>(row[r] + d);
    if (Ahead > 0)
      for (int r = 0; r < R; ++r) __builtin_prefetch(row[r] + Ahead * R * stride + d);
    if (Norm)
      for (int r = 0; r < R; ++r) norm[r] += xv[r] * xv[r];
    for (int i = 0; i < Q; ++i) {
      const V qv = load<V>(q + i * dim + d);
      for (int r = 0; r < R; ++r) acc[r][i] += xv[r] * qv;
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < Q; ++i) {
      T sum = lane_sum<T>(acc[r][i]);
      for (std::int64_t e = d; e < dim; ++e) sum += row[r][e] * q[i * dim + e];
      sims[i * nb + j + r] = sum;
    }
    if (Norm) {
      T sum = lane_sum<T>(norm[r]);
      for (std::int64_t e = d; e < dim; ++e) sum += row[r][e] * row[r][e];
      row_sq[j + r] = sum;
    }
  }
}

// tile() for queries i, i+Q of the group of rows at j; the rows' norms with
// the first queries (i == 0) when they are wanted.
template <typename T, typename V, int R, int Q>
DOCARRAY_INLINE void tile_at(const T* q, std::int64_t i, std::int64_t dim, const T* x, std::int64_t stride, std::int64_t j,
                             T* sims, std::int64_t nb, T* row_sq) {
  // The first queries' tile fetches the next group of rows while it computes
  // this one: each row is a few KB, too short for the hardware's stream
  // prefetcher to ramp up, so a group read cold from memory otherwise waits
  // on it (12 rows by a 1536 x 512 weight read cold: 481 -> 382 us; one-query
  // match of 100k x 512: 17-18 -> 15-16 ms). One group ahead measured best
  // (two and four: 421 and 403 us).
  constexpr int kAhead = 1;
  if (i == 0) {
    if (row_sq) tile<T, V, R, Q, true, kAhead>(q, dim, x, stride, j, sims, nb, row_sq);
    else tile<T, V, R, Q, false, kAhead>(q, dim, x, stride, j, sims, nb, row_sq);
  } else {
    tile<T, V, R, Q, false, 0>(q + i * dim, dim, x, stride, j, sims + i * nb, nb, row_sq);
  }
}

// One group of R rows against every query: Q at a time, then the remainder.
template <typename T, typename V, int R, int Q>
DOCARRAY_INLINE void row_group(const T* q, std::int64_t nq, std::int64_t dim, const T* x, std::int64_t stride, std::int64_t j,
                               T* sims, std::int64_t nb, T* row_sq) {
  std::int64_t i = 0;
  for (; i + Q <= nq; i += Q) tile_at<T, V, R, Q>(q, i, dim, x, stride, j, sims, nb, row_sq);
  static_assert(Q <= 4, "the remainder below covers up to 3 queries");
  switch (nq - i) {
    case 3: tile_at<T, V, R, 3>(q, i, dim, x, stride, j, sims, nb, row_sq); break;
    case 2: tile_at<T, V, R, 2>(q, i, dim, x, stride, j, sims, nb, row_sq); break;
    case 1: tile_at<T, V, R, 1>(q, i, dim, x, stride, j, sims, nb, row_sq); break;
    default: break;
  }
}

template <typename T, typename V, int R, int Q>
DOCARRAY_INLINE void score_rows_impl(const T* q, std::int64_t nq, const T* x, std::int64_t stride, std::int64_t dim,
                                     std::int64_t j0, std::int64_t j1, T* sims, std::int64_t nb, T* row_sq) {
  std::int64_t j = j0;
  for (; j + R <= j1; j += R) row_group<T, V, R, Q>(q, nq, dim, x, stride, j, sims, nb, row_sq);
  for (; j < j1; ++j) row_group<T, V, 1, Q>(q, nq, dim, x, stride, j, sims, nb, row_sq);
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

DOCARRAY_SIMD_CLONES void sq_norms(const float* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1,
                                   float* out) {
  sq_norms_impl(x, stride, dim, j0, j1, out);
}
DOCARRAY_SIMD_CLONES void sq_norms(const double* x, std::int64_t stride, std::int64_t dim, std::int64_t j0, std::int64_t j1,
                                   double* out) {
  sq_norms_impl(x, stride, dim, j0, j1, out);
}

// score_rows picks its copy by hand: its tile shape differs per target (4 x 4
// of 512-bit vectors in AVX-512's 32 registers; 2 x 4 in the 16 of AVX2 and
// SSE2), which target_clones cannot express.
namespace {
template <typename T>
using ScoreRows = void (*)(const T*, std::int64_t, const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, T*,
                           std::int64_t, T*);

template <typename T>
void score_rows_base(const T* q, std::int64_t nq, const T* x, std::int64_t stride, std::int64_t dim, std::int64_t j0,
                     std::int64_t j1, T* sims, std::int64_t nb, T* row_sq) {
  score_rows_impl<T, Vec<T, 16>, 2, 4>(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
template <typename T>
__attribute__((target("arch=x86-64-v3"))) void score_rows_v3(const T* q, std::int64_t nq, const T* x, std::int64_t stride,
                                                             std::int64_t dim, std::int64_t j0, std::int64_t j1, T* sims,
                                                             std::int64_t nb, T* row_sq) {
  score_rows_impl<T, Vec<T, 32>, 2, 4>(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
}
template <typename T>
__attribute__((target("arch=x86-64-v4"))) void score_rows_v4(const T* q, std::int64_t nq, const T* x, std::int64_t stride,
                                                             std::int64_t dim, std::int64_t j0, std::int64_t j1, T* sims,
                                                             std::int64_t nb, T* row_sq) {
  score_rows_impl<T, Vec<T, 64>, 4, 4>(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
}
#endif

template <typename T>
ScoreRows<T> pick_score_rows() {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return score_rows_v4<T>;
  if (__builtin_cpu_supports("x86-64-v3")) return score_rows_v3<T>;
#endif
  return score_rows_base<T>;
}
}  // namespace

void score_rows(const float* q, std::int64_t nq, const float* x, std::int64_t stride, std::int64_t dim, std::int64_t j0,
                std::int64_t j1, float* sims, std::int64_t nb, float* row_sq) {
  static const ScoreRows<float> run = pick_score_rows<float>();
  run(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
}
void score_rows(const double* q, std::int64_t nq, const double* x, std::int64_t stride, std::int64_t dim, std::int64_t j0,
                std::int64_t j1, double* sims, std::int64_t nb, double* row_sq) {
  static const ScoreRows<double> run = pick_score_rows<double>();
  run(q, nq, x, stride, dim, j0, j1, sims, nb, row_sq);
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
