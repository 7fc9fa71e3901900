#pragma once
// Branch-free float math that GCC vectorises inside plain loops (no libm calls
// in the loop body), for the fused kernels. Private to the clip library.
#include <cstdint>
#include <cstring>

namespace clip::detail {

// Compiles each marked loop for AVX-512, AVX2 and plain x86-64, chosen at
// load time by CPU feature (the binary runs on any x86-64; other architectures get the
// plain build).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLIP_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLIP_VECTOR_CLONES
#endif

// exp(x) to about 2 ulp for x in [-80, 80], clamped outside: 2^n * p(r),
// r = x - n ln2, |r| <= ln2 / 2, p the degree-6 Taylor polynomial (its error
// < 2e-8 relative there). The bounds keep every result, and the results of
// the callers' arithmetic on it (1 / (1 + e), e / sum of 77), normal floats:
// a subnormal costs a microcode assist per vector, and GCC computes the
// clamped branch for every lane (measured: loops 8x slower with a bound of 88).
// always_inline: GCC does not otherwise inline a plain function into the
// target_clones copies, and the loops would not vectorise.
#define CLIP_VECTOR_INLINE __attribute__((always_inline)) static inline

CLIP_VECTOR_INLINE float fast_exp(float x) {
  x = x < -80.0f ? -80.0f : (x > 80.0f ? 80.0f : x);
  // Round to nearest by the 1.5 * 2^23 trick: GCC has no vector roundeven.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606820309417e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// 1 / (1 + exp(-x)).
CLIP_VECTOR_INLINE float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

}  // namespace clip::detail
