// Lane types: the math in vmath.hpp and gumbel.hpp is written once, as templates over a
// lane type V that is either a scalar (float, double) or a vector of 16 of them (GCC and
// Clang vector extensions: VF32, VF64).  Operators (+ - * / < & >> ...) act lane-wise;
// the helpers below cover what operators cannot say: explicit fused multiply-add, lane
// selection, bit reinterpretation and exact small-integer conversion.
//
// Every lane computes exactly what the scalar code computes, and the kernels sum in 16
// fixed lanes on every target, so the targets produce identical bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

// GS_NO_VECTOR_EXT builds the scalar fallback (what compilers without vector extensions
// get) on GCC/Clang too, so that it can be tested.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(GS_NO_VECTOR_EXT)
#define GS_HAVE_VECTOR_EXT 1
#if defined(__SSE2__)
// GCC 12's avx512fintrin.h reads an undefined vector on purpose (_mm512_undefined_*),
// which -Wmaybe-uninitialized reports wherever its intrinsics are inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define GS_INLINE inline __attribute__((always_inline))
#define GS_COLD __attribute__((noinline, cold))  // rarely run: kept out of the hot code
#define GS_LAMBDA_INLINE __attribute__((always_inline))
#else
#define GS_LAMBDA_INLINE
#define GS_INLINE inline
#define GS_COLD
#endif

#include "simd/target.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace lanes {

template <class V>
struct Traits;

template <>
struct Traits<float> {
  using Scalar = float;
  using Int = int32_t;
  using UInt = uint32_t;
  using Mask = bool;
};
template <>
struct Traits<double> {
  using Scalar = double;
  using Int = int64_t;
  using UInt = uint64_t;
  using Mask = bool;
};

template <class V>
using Int = typename Traits<V>::Int;
template <class V>
using UInt = typename Traits<V>::UInt;
template <class V>
using Mask = typename Traits<V>::Mask;

// ----- scalar lanes ---------------------------------------------------------------
// std::fma is correctly rounded everywhere (hardware FMA or glibc's exact emulation).
GS_INLINE float fma(float a, float b, float c) { return std::fma(a, b, c); }
GS_INLINE double fma(double a, double b, double c) { return std::fma(a, b, c); }
GS_INLINE float select(bool m, float a, float b) { return m ? a : b; }
GS_INLINE double select(bool m, double a, double b) { return m ? a : b; }
GS_INLINE uint32_t as_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
GS_INLINE uint64_t as_bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
GS_INLINE float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
GS_INLINE double from_bits(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
// Integer -> float for |i| < 2^24 (float) or 2^31 (double): exact.
GS_INLINE float small_int_to_float(int32_t i) { return static_cast<float>(i); }
GS_INLINE double small_int_to_float(int64_t i) { return static_cast<double>(i); }
template <class V>
GS_INLINE V splat(typename Traits<V>::Scalar s) {
  return static_cast<V>(s);
}
GS_INLINE bool any(bool m) { return m; }

#ifdef GS_HAVE_VECTOR_EXT
// ----- vector lanes: one native register of the target ---------------------------
// The compiler lowers vector-extension code well only at the target's native register
// size (larger vectors get split, and some operations scalarised), so each target uses
// its own register width here; the kernels walk every 16 elements as 16 / W vectors so
// that the summation lanes stay the same 16 on every target.
#if defined(__AVX512F__)
constexpr int kNativeBytes = 64;
#elif defined(__AVX2__)
constexpr int kNativeBytes = 32;
#else
constexpr int kNativeBytes = 16;
#endif
typedef float VF32 __attribute__((vector_size(kNativeBytes)));
typedef double VF64 __attribute__((vector_size(kNativeBytes)));
typedef int32_t VI32 __attribute__((vector_size(kNativeBytes)));
typedef uint32_t VU32 __attribute__((vector_size(kNativeBytes)));
typedef int64_t VI64 __attribute__((vector_size(kNativeBytes)));
typedef uint64_t VU64 __attribute__((vector_size(kNativeBytes)));

template <>
struct Traits<VF32> {
  using Scalar = float;
  using Int = VI32;
  using UInt = VU32;
  using Mask = VI32;
};
template <>
struct Traits<VF64> {
  using Scalar = double;
  using Int = VI64;
  using UInt = VU64;
  using Mask = VI64;
};

// Lanes of a vector type.
template <class V>
constexpr int width() {
  return static_cast<int>(sizeof(V) / sizeof(typename Traits<V>::Scalar));
}

template <>
GS_INLINE VF32 splat<VF32>(float s) {
  return s - VF32{};  // s - 0 == s for every s, -0 and NaN included
}
template <>
GS_INLINE VF64 splat<VF64>(double s) {
  return s - VF64{};
}

// Explicit FMA, lane by lane: one instruction where the target has FMA, else the
// correctly rounded std::fma per lane (same result, slower).
GS_INLINE VF32 fma(VF32 a, VF32 b, VF32 c) {
#if defined(__AVX512F__)
  return (VF32)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && defined(__AVX2__)
  return (VF32)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  VF32 r;
  for (int i = 0; i < width<VF32>(); ++i) r[i] = std::fma(a[i], b[i], c[i]);
  return r;
#endif
}
GS_INLINE VF64 fma(VF64 a, VF64 b, VF64 c) {
#if defined(__AVX512F__)
  return (VF64)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(__FMA__) && defined(__AVX2__)
  return (VF64)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
  VF64 r;
  for (int i = 0; i < width<VF64>(); ++i) r[i] = std::fma(a[i], b[i], c[i]);
  return r;
#endif
}

GS_INLINE VF32 select(VI32 m, VF32 a, VF32 b) { return m ? a : b; }
GS_INLINE VF64 select(VI64 m, VF64 a, VF64 b) { return m ? a : b; }
GS_INLINE VU32 as_bits(VF32 x) { return (VU32)x; }
GS_INLINE VU64 as_bits(VF64 x) { return (VU64)x; }
GS_INLINE VF32 from_bits(VU32 u) { return (VF32)u; }
GS_INLINE VF64 from_bits(VU64 u) { return (VF64)u; }
GS_INLINE VF32 small_int_to_float(VI32 i) { return __builtin_convertvector(i, VF32); }
GS_INLINE VF64 small_int_to_float(VI64 i) {
  // |i| < 2^51: 1.5 * 2^52 + i is exact, its bits are those of 1.5 * 2^52 plus i
  // (AVX2 has no int64 -> double conversion; this needs only an integer add).
  return (VF64)((VU64)i + 0x4338000000000000ull) - 0x1.8p52;
}
template <class M>
GS_INLINE bool any(M m) {
  for (int i = 0; i < static_cast<int>(sizeof(M) / sizeof(m[0])); ++i)
    if (m[i]) return true;
  return false;
}

template <class V>
GS_INLINE V load(const typename Traits<V>::Scalar* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
GS_INLINE void store(typename Traits<V>::Scalar* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
template <class U, class S>
GS_INLINE U load_bits(const S* p) {
  U v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Whether any lane of a comparison result is set, in one test of the register.
template <class M>
GS_INLINE bool any_set(M m) {
#if defined(__AVX512F__)
  return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
#elif defined(__AVX2__)
  return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#elif defined(__SSE2__)
  return _mm_movemask_epi8((__m128i)m) != 0;
#else
  return any(m);
#endif
}

// Whether a < b in any lane (an ordered compare: NaN lanes are false).  On AVX-512 one
// compare into a mask register; any_set(a < b) costs two more instructions there, as
// the compiler turns the comparison's vector back into a mask.
template <class V>
GS_INLINE bool any_less(V a, V b) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<V, VF32>)
    return _mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_LT_OQ) != 0;
  else if constexpr (std::is_same_v<V, VF64>)
    return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_LT_OQ) != 0;
  else
    return any_set(a < b);
#else
  return any_set(a < b);
#endif
}

// Accumulates whether any lane of the vectors it is given was NaN: an unordered compare
// and an OR per vector (on AVX-512 into a mask register, with no conversion).
template <class V>
struct NanTest {
#if defined(__AVX512F__)
  unsigned m = 0;
  GS_INLINE void add(V r) {
    if constexpr (sizeof(r[0]) == 4)
      m |= _mm512_cmp_ps_mask((__m512)r, (__m512)r, _CMP_UNORD_Q);
    else
      m |= _mm512_cmp_pd_mask((__m512d)r, (__m512d)r, _CMP_UNORD_Q);
  }
  GS_INLINE bool any() const { return m != 0; }
#else
  typename Traits<V>::Mask m{};
  GS_INLINE void add(V r) { m |= r != r; }
  GS_INLINE bool any() const { return any_set(m); }
#endif
};

// The first n lanes (0 < n < width) from p, the others 0, and the first n lanes of v to
// p, the memory past them untouched and never accessed (masked loads and stores do not
// fault on masked-off lanes): a row's last partial vector in one vector operation, on
// the targets that have masked memory operations (GS_HAVE_PARTIAL).
#if defined(__AVX512F__)
#define GS_HAVE_PARTIAL 1
// The mask of the first n lanes of 16 (32-bit) or 8 (64-bit).
GS_INLINE __mmask16 first_lanes16(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }
GS_INLINE __mmask8 first_lanes8(int64_t n) { return static_cast<__mmask8>((1u << n) - 1); }
GS_INLINE VF32 load_first(const float* p, int64_t n) {
  return (VF32)_mm512_maskz_loadu_ps(first_lanes16(n), p);
}
GS_INLINE VF64 load_first(const double* p, int64_t n) {
  return (VF64)_mm512_maskz_loadu_pd(first_lanes8(n), p);
}
GS_INLINE void store_first(float* p, VF32 v, int64_t n) {
  _mm512_mask_storeu_ps(p, first_lanes16(n), (__m512)v);
}
GS_INLINE void store_first(double* p, VF64 v, int64_t n) {
  _mm512_mask_storeu_pd(p, first_lanes8(n), (__m512d)v);
}
// ... and with the lanes from n on set to fill (one masked load).
GS_INLINE VF32 load_first(const float* p, int64_t n, float fill) {
  return (VF32)_mm512_mask_loadu_ps(_mm512_set1_ps(fill), first_lanes16(n), p);
}
GS_INLINE VF64 load_first(const double* p, int64_t n, double fill) {
  return (VF64)_mm512_mask_loadu_pd(_mm512_set1_pd(fill), first_lanes8(n), p);
}
#elif defined(__AVX2__)
#define GS_HAVE_PARTIAL 1
GS_INLINE __m256i first_lanes32(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
GS_INLINE __m256i first_lanes64(int64_t n) {
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
GS_INLINE VF32 load_first(const float* p, int64_t n) {
  return (VF32)_mm256_maskload_ps(p, first_lanes32(n));
}
GS_INLINE VF64 load_first(const double* p, int64_t n) {
  return (VF64)_mm256_maskload_pd(p, first_lanes64(n));
}
GS_INLINE VF32 load_first(const float* p, int64_t n, float fill) {
  const __m256i m = first_lanes32(n);
  return (VF32)_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), (__m256)m);
}
GS_INLINE VF64 load_first(const double* p, int64_t n, double fill) {
  const __m256i m = first_lanes64(n);
  return (VF64)_mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), (__m256d)m);
}
GS_INLINE void store_first(float* p, VF32 v, int64_t n) {
  _mm256_maskstore_ps(p, first_lanes32(n), (__m256)v);
}
GS_INLINE void store_first(double* p, VF64 v, int64_t n) {
  _mm256_maskstore_pd(p, first_lanes64(n), (__m256d)v);
}
#endif
#endif  // GS_HAVE_VECTOR_EXT

}  // namespace lanes
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
