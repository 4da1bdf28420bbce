// Elementary functions of the kernels: log(1+f) on the reduced range, log, exp.
//
// Every function here is written once, as a template over the lane type V (a scalar or
// a 16-lane vector, see lanes.hpp), in branch-free straight-line code of IEEE operations
// (add, mul, div, explicit fused multiply-add, integer bit operations), so that scalar
// and vector code perform the same operations in the same order and produce the same
// bits.  The build compiles with -ffp-contract=off: the compiler never fuses on
// its own, every FMA below is written as one.
//
// Method (standard facts, see e.g. Muller, "Elementary Functions", ch. 11):
//   log x = e*ln2 + log(1+f), x = 2^e (1+f), 1+f in [sqrt(1/2), sqrt(2)), and
//   log(1+f) = 2 atanh(s) = 2s + 2s^3/3 + 2s^5/5 + ..., s = f/(2+f), |s| <= 0.1716,
//   evaluated as f - s*(f - R(s^2)) with R = s^2 (2/3 + 2/5 s^2 + ...), using
//   2s = f - s*f, so the leading term f is exact and only the small correction rounds.
//   exp z = 2^k * e^r, k = round(z/ln2), r = z - k*ln2 (Cody-Waite, two-part ln2),
//   e^r by its Taylor polynomial on |r| <= ln2/2, 2^k applied in two factors so that
//   subnormal results round once.
#pragma once

#include <cstdint>
#include <type_traits>

#include "simd/lanes.hpp"

#include "simd/target.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace vmath {

template <class T>
struct Consts;

template <>
struct Consts<float> {
  static constexpr int mant_bits = 23;
  static constexpr uint32_t mant_mask = 0x007fffffu;
  static constexpr uint32_t sqrt_half_bits = 0x3f3504f3u;  // RN(sqrt(1/2))
  static constexpr float ln2_hi = 0x1.62e4p-1f;            // ln 2 to 17 bits
  static constexpr float ln2_lo = 0x1.7f7d1cp-20f;         // RN(ln 2 - ln2_hi)
  static constexpr float log2e = 0x1.715476p+0f;           // RN(1/ln 2)
  static constexpr float round_magic = 0x1.8p23f;          // x + 1.5*2^23 rounds x to int
  static constexpr int exp_bias = 127;
  // exp: below z_min every result rounds to +0, above z_max to +inf.
  static constexpr float exp_z_min = -104.0f;
  static constexpr float exp_z_max = 89.0f;
};

template <>
struct Consts<double> {
  static constexpr int mant_bits = 52;
  static constexpr uint64_t mant_mask = 0x000fffffffffffffull;
  static constexpr uint64_t sqrt_half_bits = 0x3fe6a09e667f3bcdull;
  static constexpr double ln2_hi = 0x1.62e42fefa38p-1;    // ln 2 to 42 bits
  static constexpr double ln2_lo = 0x1.ef35793c7673p-45;  // RN(ln 2 - ln2_hi)
  static constexpr double log2e = 0x1.71547652b82fep+0;
  static constexpr double round_magic = 0x1.8p52;
  static constexpr int exp_bias = 1023;
  static constexpr double exp_z_min = -746.0;
  static constexpr double exp_z_max = 710.0;
};

// ---------------------------------------------------------------------------------
// log1p_reduced(f) = log(1 + f)
//   lanes:  float32, float64
//   range:  f in [sqrt(1/2) - 1, sqrt(2) - 1] (slightly wider is harmless)
//   error:  <= 1 ulp; measured maxima 0.890 (float32, every input of the range) and 0.898
//           (float64, dense sets) ulp (scripts/ulp_sweep.py; tests/test_vmath.py)
// The series 2 atanh(s) is cut where the next term is below 2^-30 (float32) or 2^-60
// (float64) of the result: 4 terms of R for float32, 10 for float64.
// log1p_correction(f) = c with log(1 + f) = f - c up to the rounding of f - c: the small
// correction alone, so that log_combine can add f exactly (float64).
template <class V>
GS_INLINE V log1p_correction(V f) {
  using S = typename lanes::Traits<V>::Scalar;
  using lanes::fma;
  const V s = f / (S(2) + f);
  const V s2 = s * s;
  V r;
  if constexpr (sizeof(S) == 4) {
    r = lanes::splat<V>(2.0f / 9.0f);
    r = fma(r, s2, lanes::splat<V>(2.0f / 7.0f));
    r = fma(r, s2, lanes::splat<V>(2.0f / 5.0f));
    r = fma(r, s2, lanes::splat<V>(2.0f / 3.0f));
  } else {
    r = lanes::splat<V>(2.0 / 21.0);
    r = fma(r, s2, lanes::splat<V>(2.0 / 19.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 17.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 15.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 13.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 11.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 9.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 7.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 5.0));
    r = fma(r, s2, lanes::splat<V>(2.0 / 3.0));
  }
  r = r * s2;
  return s * (f - r);
}

template <class V>
GS_INLINE V log1p_reduced(V f) {
  return f - log1p_correction(f);
}

// e*ln2 + log(1+f), the two-part ln2 keeping e*ln2 exact to the final rounding.
//   float32: log1p(f) rounded, then e ln2_lo and e ln2_hi added by two FMAs.
//   float64: log1p(f) is never rounded on its own (near x = 2^k sqrt(1/2) the sum
//   cancels, and that rounding alone costs up to 0.9 ulp of the result): a = e ln2_hi is
//   exact (42-bit ln2_hi, |e| < 2^11), hi + err = a + f exactly (Fast2Sum: |a| >= 0.69 >
//   |f|, or a = 0), and the small terms err - c + e ln2_lo are added to hi last.
//   (Stream version 2; version 1 used the float32 formula for float64 too, 1.30 ulp.)
template <class V>
GS_INLINE V log_combine(V e, V f) {
  using S = typename lanes::Traits<V>::Scalar;
  using C = Consts<S>;
  using lanes::fma;
  using lanes::splat;
  if constexpr (sizeof(S) == 4) {
    return fma(e, splat<V>(C::ln2_hi), fma(e, splat<V>(C::ln2_lo), log1p_reduced(f)));
  } else {
    const V c = log1p_correction(f);
    const V a = e * C::ln2_hi;
    const V hi = a + f;
    const V err = f - (hi - a);
    return hi + fma(e, splat<V>(C::ln2_lo), err - c);
  }
}

// Splits a positive normal x into x = 2^e * (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).
// f is exact (Sterbenz).  Integer trick: subtracting the bits of sqrt(1/2) moves the
// mantissa boundary to sqrt(1/2); the exponent field of the difference is e.
template <class V>
GS_INLINE void log_reduce(V x, V& e, V& f) {
  using S = typename lanes::Traits<V>::Scalar;
  using C = Consts<S>;
  using UInt = lanes::UInt<V>;
  using Int = lanes::Int<V>;
  const UInt d = lanes::as_bits(x) - C::sqrt_half_bits;
  // e = d >> mant_bits as a signed number: an arithmetic shift for float32; for float64
  // a logical shift and a sign extension of the exponent field (AVX2 has no 64-bit
  // arithmetic shift).
  if constexpr (sizeof(S) == 4) {
    e = lanes::small_int_to_float((Int)d >> C::mant_bits);
  } else {
    constexpr int kExpBits = static_cast<int>(8 * sizeof(S)) - C::mant_bits;
    using SUInt = typename lanes::Traits<S>::UInt;
    constexpr SUInt kSign = SUInt(1) << (kExpBits - 1);
    e = lanes::small_int_to_float((Int)((d >> C::mant_bits) ^ kSign) -
                                  static_cast<typename lanes::Traits<S>::Int>(kSign));
  }
  f = lanes::from_bits((UInt)((d & C::mant_mask) + C::sqrt_half_bits)) - S(1);
}

// ---------------------------------------------------------------------------------
// log(x)
//   lanes:  float32, float64
//   range:  x positive, normal and finite (the kernels never pass anything else);
//           subnormals, 0, inf, NaN and negatives give unspecified finite or NaN values
//   error:  <= 1 ulp; measured maxima 0.954 (float32, every positive normal) and 0.951
//           (float64, dense sets) ulp (scripts/ulp_sweep.py; tests/test_vmath.py)
template <class V>
GS_INLINE V log(V x) {
  V e, f;
  log_reduce(x, e, f);
  return log_combine(e, f);
}

// ---------------------------------------------------------------------------------
// exp(z)
//   lanes:  float32, float64
//   range:  every z: -inf and z below exp_z_min give +0, z above exp_z_max give +inf,
//           NaN gives NaN; subnormal results are rounded once (not flushed)
//   error:  <= 1 ulp for normal results; measured maxima 0.939 (float32, every input) and
//           0.894 (float64, dense sets) ulp (scripts/ulp_sweep.py; tests/test_vmath.py)
template <class V>
GS_INLINE V exp_poly(V r) {
  using S = typename lanes::Traits<V>::Scalar;
  using lanes::fma;
  using lanes::splat;
  V p;
  if constexpr (sizeof(S) == 4) {  // Taylor to r^7, error < 2^-27 on |r| <= 0.35
    p = splat<V>(1.0f / 5040.0f);
    p = fma(p, r, splat<V>(1.0f / 720.0f));
    p = fma(p, r, splat<V>(1.0f / 120.0f));
    p = fma(p, r, splat<V>(1.0f / 24.0f));
    p = fma(p, r, splat<V>(1.0f / 6.0f));
    p = fma(p, r, splat<V>(0.5f));
    p = fma(p, r, splat<V>(1.0f));
    return fma(p, r, splat<V>(1.0f));
  } else {  // Taylor to r^13, error < 2^-57
    p = splat<V>(1.0 / 6227020800.0);
    p = fma(p, r, splat<V>(1.0 / 479001600.0));
    p = fma(p, r, splat<V>(1.0 / 39916800.0));
    p = fma(p, r, splat<V>(1.0 / 3628800.0));
    p = fma(p, r, splat<V>(1.0 / 362880.0));
    p = fma(p, r, splat<V>(1.0 / 40320.0));
    p = fma(p, r, splat<V>(1.0 / 5040.0));
    p = fma(p, r, splat<V>(1.0 / 720.0));
    p = fma(p, r, splat<V>(1.0 / 120.0));
    p = fma(p, r, splat<V>(1.0 / 24.0));
    p = fma(p, r, splat<V>(1.0 / 6.0));
    p = fma(p, r, splat<V>(0.5));
    p = fma(p, r, splat<V>(1.0));
    return fma(p, r, splat<V>(1.0));
  }
}

// ----- results below the smallest normal, without microcode assists -------------------
// On many x86 cores a multiply, FMA, division or scalef whose input or result is
// subnormal takes a microcode assist of 100 cycles or more per instruction (on the
// Xeon of docs/performance.md: 44 ns per AVX-512 multiply or FMA, 52 per division, 68
// per scalef, against under 2; additions, comparisons, min/max and conversions are not
// affected).  A softmax at tau around 0.03 to 0.2 puts a fifth of its exps in the
// subnormal range, which made it 5x slower.  So on the AVX2 and AVX-512 targets
// (GS_EXACT_TINY) the lanes whose exp is below the smallest normal are computed in
// integer arithmetic (ldexp_tiny), and products with such operands or results in exact
// double arithmetic (mul_exact, fma_exact), each rounded to nearest even as the hardware
// rounds: the same bits.  The baseline target keeps the plain operations, and the tests
// compare the targets bit for bit on rows in that band (tests/test_targets.py).
#if defined(__AVX2__) || defined(__AVX512F__)
#define GS_EXACT_TINY 1
#endif

// p 2^j rounded to nearest even, for positive normal p in [1/2, 2) and an integer j with
// p 2^j below the smallest normal (or within rounding of it): the result is subnormal,
// +0 or the smallest normal.  In units of the smallest subnormal, p 2^j = m 2^-t with m
// the 24 (53) bit significand of p and t = 1 - E - j (E its biased exponent), so the
// result's bits are m >> t rounded to nearest even (t >= 0 here; t is capped at the lane
// width - 1, where every m rounds to 0 as a larger t does).
template <class V>
GS_INLINE V ldexp_tiny(V p, lanes::Int<V> j) {
  using S = typename lanes::Traits<V>::Scalar;
  using C = Consts<S>;
  using UInt = lanes::UInt<V>;
  using Int = lanes::Int<V>;
  using SU = typename lanes::Traits<S>::UInt;
  constexpr int kLast = static_cast<int>(8 * sizeof(S)) - 1;
  const UInt pb = lanes::as_bits(p);
  const UInt m = (pb & C::mant_mask) | (SU(1) << C::mant_bits);
  Int t = 1 - (Int)(pb >> C::mant_bits) - j;
  t = t < 0 ? Int{} : t;
  t = t > kLast ? Int{} + kLast : t;
  const UInt ut = (UInt)t;
  const UInt q = m >> ut;
  const UInt unit = (UInt{} + 1) << ut;
  const UInt rem = m & (unit - 1), half = unit >> 1;
  // round up past the half, and at the half (rem != 0: a real tie) to even
  const UInt up = (UInt)((rem > half) | ((rem == half) & (rem != 0) & ((q & 1) != 0)));
  return lanes::from_bits(q - up);  // up: all ones (-1) in the lanes that round up
}

#if defined(GS_EXACT_TINY)
// The float32 lanes of x in (0, smallest normal): with b the bits of x, b + 0x7f800000
// (wrapping) is above 0x7f800000 as a signed integer exactly for 0 < b < 0x00800000
// (+0 stays at 0x7f800000; normals, NaN and every negative x wrap negative: a negative
// subnormal is not found, and takes the plain, slower operation; the soft samples this
// test is used on are never negative).
GS_INLINE lanes::VI32 tiny_lanes(lanes::VF32 x) {
  return (lanes::VI32)(lanes::as_bits(x) + 0x7f800000u) > 0x7f800000;
}

// A float32 vector as two vectors of doubles (its lower and upper halves), and back with
// one rounding to float32 (to nearest even; conversions take no assist).
struct Halves {
  lanes::VF64 lo, hi;
};
GS_INLINE Halves widen(lanes::VF32 x) {
#if defined(__AVX512F__)
  const __m256 h = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)x), 1));
  return {(lanes::VF64)_mm512_cvtps_pd(_mm512_castps512_ps256((__m512)x)),
          (lanes::VF64)_mm512_cvtps_pd(h)};
#else
  return {(lanes::VF64)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)x)),
          (lanes::VF64)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)x, 1))};
#endif
}
GS_INLINE lanes::VF32 narrow(Halves h) {
#if defined(__AVX512F__)
  const __m512d lo = _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps((__m512d)h.lo)));
  const __m256d hi = _mm256_castps_pd(_mm512_cvtpd_ps((__m512d)h.hi));
  return (lanes::VF32)_mm512_castpd_ps(_mm512_insertf64x4(lo, hi, 1));
#else
  return (lanes::VF32)_mm256_set_m128(_mm256_cvtpd_ps((__m256d)h.hi),
                                      _mm256_cvtpd_ps((__m256d)h.lo));
#endif
}

// a * b as float32 multiplication rounds it, for any lanes, through doubles: the
// product of two floats is exact in double (48 bits, no double underflow), and the
// conversion rounds it once.  No operand is subnormal in double.
GS_INLINE lanes::VF32 mul_exact(lanes::VF32 a, lanes::VF32 b) {
  const Halves x = widen(a), y = widen(b);
  return narrow({x.lo * y.lo, x.hi * y.hi});
}

// e * s for e >= 0 and 0 < s <= 1, below = 2^-125 / s: the lanes whose product may be
// below the smallest normal (e < below; comparisons take no assist) from mul_exact, the
// others multiplied as usual (those lanes multiply +0 there).  The same bits as e * s.
GS_INLINE lanes::VF32 scale_small(lanes::VF32 e, float s, float below) {
  if (!lanes::any_less(e, lanes::splat<lanes::VF32>(below))) return e * s;
  const auto small = e < below;
  return lanes::select(small, mul_exact(e, lanes::splat<lanes::VF32>(s)),
                       lanes::select(small, lanes::VF32{}, e) * s);
}

// fma(a, b, c) rounded once, through doubles: p = a b is exact, s + e = p + c exactly
// (TwoSum), s rounded to odd (its last bit set toward e when e != 0 and the bit is clear),
// and round-to-odd in 53 bits followed by rounding to 24 is the single rounding of p + c.
// Infinite or NaN lanes: e is NaN, s is kept (the hardware's inf or a NaN).
GS_INLINE lanes::VF64 fma_odd(lanes::VF64 a, lanes::VF64 b, lanes::VF64 c) {
  using lanes::VU64;
  const lanes::VF64 p = a * b, s = p + c;
  const lanes::VF64 bv = s - p;
  const lanes::VF64 e = (p - (s - bv)) + (c - bv);
  const VU64 sb = lanes::as_bits(s);
  const auto inexact = (e < 0) | (e > 0);  // false for NaN
  const auto away = (e < 0) == (s < 0);    // toward e is away from 0
  const auto even = (sb & 1u) == 0;
  const VU64 step = (VU64)(inexact & even) & (VU64)(away ? lanes::VI64{} + 1 : lanes::VI64{} - 1);
  return lanes::from_bits(sb + step);
}
GS_INLINE lanes::VF32 fma_exact(lanes::VF32 a, lanes::VF32 b, lanes::VF32 c) {
  const Halves x = widen(a), y = widen(b), z = widen(c);
  return narrow({fma_odd(x.lo, y.lo, z.lo), fma_odd(x.hi, y.hi, z.hi)});
}
#endif

// exp_scaled<N>(z) = e^z * 2^N, rounded once like exp (the scaling is folded into the
// exponent, so no rounding of z + N ln2 and no intermediate underflow); exp = N = 0.
//   range:  as exp, with the clamps moved down by N ln2
//   error:  as exp
template <int N, bool kClampHigh = true, class V>
GS_INLINE V exp_scaled(V z) {
  using S = typename lanes::Traits<V>::Scalar;
  using C = Consts<S>;
  using UInt = lanes::UInt<V>;
  using Int = lanes::Int<V>;
  using lanes::fma;
  using lanes::select;
  using lanes::splat;
  constexpr S z_min = static_cast<S>(C::exp_z_min - N * 0.6931471805599453);
  constexpr S z_max = static_cast<S>(C::exp_z_max - N * 0.6931471805599453);
  // Below z_min the result is +0: those lanes compute exp(0) and are set to +0 at the
  // end, as the clamp to z_min gave (an underflow to 0 costs a microcode assist per
  // lane on many x86 cores: masked and very unlikely entries made rows 4x slower).
  // NaN passes through (every comparison is false for NaN).
  const auto under = z < z_min;
  z = select(under, splat<V>(S(0)), z);
  if constexpr (kClampHigh) z = select(z > z_max, splat<V>(z_max), z);
  // k = round-to-nearest-even(z / ln2) by the magic-number addition; the integer k is
  // the difference of the bit patterns, which avoids converting NaN to an integer.
  const V biased = z * C::log2e + C::round_magic;
  const V k = biased - C::round_magic;
  Int ki = (Int)(lanes::as_bits(biased) - lanes::as_bits(C::round_magic));
  if constexpr (N != 0) ki = (Int)((UInt)ki + static_cast<unsigned>(N));
  V r = fma(-k, splat<V>(C::ln2_hi), z);
  r = fma(-k, splat<V>(C::ln2_lo), r);
  const V p = exp_poly(r);
  // 2^k as 2^k1 * 2^k2 with both halves normal: p * 2^k1 is exact, the second product
  // rounds once even when the result is subnormal.
  // k1 = floor(k / 2) for k >= -2048 (always, for non-NaN z), with a logical shift.
  // In unsigned (wrapping) arithmetic, which gives the bits of the signed formulas: for
  // NaN z, ki is arbitrary, and signed arithmetic could overflow (undefined behaviour).
  const UInt k1 = (((UInt)ki + 2048u) >> 1) - 1024u;
  const UInt k2 = (UInt)ki - k1;
  constexpr unsigned bias = static_cast<unsigned>(C::exp_bias);
  const V s1 = lanes::from_bits((UInt)((k1 + bias) << C::mant_bits));
  const V s2 = lanes::from_bits((UInt)((k2 + bias) << C::mant_bits));
#if defined(GS_EXACT_TINY)
  if constexpr (!std::is_same_v<V, S>) {
    // results below the smallest normal (k + N <= 1 - bias; not the +0 lanes, whose k is
    // N here, nor NaN lanes, whose k is arbitrary): from ldexp_tiny, the other lanes'
    // scaling with k + N = 0 in those lanes
    const auto small = (ki < 2 - C::exp_bias) & (z == z);
    if (lanes::any_set(small)) {
      const V p0 = select(small, splat<V>(S(1)), p);
      const V t1 = select(small, splat<V>(S(1)), s1), t2 = select(small, splat<V>(S(1)), s2);
      const V res = select(small, ldexp_tiny(p, ki), (p0 * t1) * t2);
      return select(under, splat<V>(S(0)), res);
    }
  }
#endif
  return select(under, splat<V>(S(0)), (p * s1) * s2);
}

template <class V>
GS_INLINE V exp(V z) {
  return exp_scaled<0>(z);
}

// exp_scaled<N>(z) for z <= 0, -inf or NaN (the softmax's (v - max) / tau and x - max),
// the same bits as exp_scaled: k is at most N there, so the upper clamp is never
// needed, and 2^k is applied by one scalef on AVX-512 (p 2^k rounded once, as the two
// factors round it), elsewhere as 2^(k + 64) * 2^-64: for z >= z_min, k >= -150
// (float32) or -1075 (float64), and k <= N <= 62 resp. 512, so 2^(k + 64) is normal,
// p 2^(k + 64) is exact and the product with the constant 2^-64 rounds once.
// With GS_EXACT_TINY, a vector with a lane below z_low (a result that may be below the
// smallest normal, or +0 below z_min) takes a slower branch ("exp_low" below), where the
// scaling sees no such lane: +0 below z_min, ldexp_tiny for the results below the
// smallest normal (and *tiny is set when there are any).
template <int N, class V>
GS_INLINE V exp_scaled_nonpos(V z, bool* tiny = nullptr) {
  using S = typename lanes::Traits<V>::Scalar;
  if constexpr (std::is_same_v<V, S>) {
    (void)tiny;
    return exp_scaled<N, false>(z);
  } else {
    using C = Consts<S>;
    using UInt = lanes::UInt<V>;
    using lanes::fma;
    using lanes::splat;
    static_assert(N <= (sizeof(S) == 4 ? 63 : 959), "2^(k + 64) must stay finite");
    constexpr S z_min = static_cast<S>(C::exp_z_min - N * 0.6931471805599453);
    // bits of 2^(k + N + 64) from those of biased: (k + N + 64 + bias) << mant_bits, k
    // from the bit patterns (unsigned, wrapping: for NaN z the value is arbitrary and
    // the result NaN anyway)
    auto scaled = [](V p, V k, V biased) GS_LAMBDA_INLINE {
#if defined(__AVX512F__)
      (void)biased;
      // (k + 0 would cost two instructions: the compiler keeps the addition for k = -0,
      // which scales as +0 does)
      V kn = k;
      if constexpr (N != 0) kn = k + S(N);
      if constexpr (sizeof(S) == 4)
        return (V)_mm512_scalef_ps((__m512)p, (__m512)kn);
      else
        return (V)_mm512_scalef_pd((__m512d)p, (__m512d)kn);
#else
      (void)k;
      const auto offset = static_cast<typename lanes::Traits<S>::UInt>(N + 64 + C::exp_bias) -
                          lanes::as_bits(C::round_magic);
      const V scale = lanes::from_bits((UInt)((lanes::as_bits(biased) + offset) << C::mant_bits));
      return (p * scale) * S(0x1p-64);
#endif
    };
#if defined(GS_EXACT_TINY)
    // below z_low, k + N <= -126 (-1022) is possible; above it k + N >= -125 (-1021)
    constexpr S z_low = static_cast<S>((C::exp_bias - 2 + N) * -0.6931471805599453);
    const V biased = z * C::log2e + C::round_magic;
    const V k = biased - C::round_magic;
    V r = fma(-k, splat<V>(C::ln2_hi), z);
    r = fma(-k, splat<V>(C::ln2_lo), r);
    const V p = exp_poly(r);  // any value in the lanes below z_min (-inf z: NaN)
    if (!lanes::any_less(z, splat<V>(z_low))) return scaled(p, k, biased);
    const auto low = z < z_low;  // NaN: false
    // exp_low: the lanes below z_min are +0, those with k + N <= 1 - bias (a result
    // below the smallest normal, or rounding up to it) come from ldexp_tiny, and the
    // scaling computes the others with k = 0 in those lanes (a normal p 2^N)
    using Int = lanes::Int<V>;
    const auto under = z < z_min;
    const Int j = (Int)(lanes::as_bits(biased) - lanes::as_bits(C::round_magic)) + N;
    const auto small = (j < 2 - C::exp_bias) & low & ~under;  // (NaN lanes are not low)
    const auto out = under | small;
    const V b0 = lanes::select(out, splat<V>(C::round_magic), biased);
    V res = scaled(p, lanes::select(out, splat<V>(S(0)), k), b0);
    if (lanes::any_set(small)) {
      res = lanes::select(small, ldexp_tiny(lanes::select(small, p, splat<V>(S(1))), j), res);
      if (tiny) *tiny = true;
    }
    return lanes::select(under, splat<V>(S(0)), res);
#else
    (void)tiny;
    const auto under = z < z_min;                 // +0, without an underflow (as in exp_scaled)
    z = lanes::select(under, splat<V>(S(0)), z);  // NaN passes through
    const V biased = z * C::log2e + C::round_magic;
    const V k = biased - C::round_magic;
    V r = fma(-k, splat<V>(C::ln2_hi), z);
    r = fma(-k, splat<V>(C::ln2_lo), r);
    const V p = exp_poly(r);
    return lanes::select(under, splat<V>(S(0)), scaled(p, k, biased));
#endif
  }
}

}  // namespace vmath
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
