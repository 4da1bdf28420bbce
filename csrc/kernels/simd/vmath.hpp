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
template <int N, class V>
GS_INLINE V exp_scaled_nonpos(V z) {
  using S = typename lanes::Traits<V>::Scalar;
  if constexpr (std::is_same_v<V, S>) {
    return exp_scaled<N, false>(z);
  } else {
    using C = Consts<S>;
    using UInt = lanes::UInt<V>;
    using lanes::fma;
    using lanes::splat;
    static_assert(N <= (sizeof(S) == 4 ? 63 : 959), "2^(k + 64) must stay finite");
    constexpr S z_min = static_cast<S>(C::exp_z_min - N * 0.6931471805599453);
    const auto under = z < z_min;                 // +0, without an underflow (as in exp_scaled)
    z = lanes::select(under, splat<V>(S(0)), z);  // NaN passes through
    const V biased = z * C::log2e + C::round_magic;
    const V k = biased - C::round_magic;
    V r = fma(-k, splat<V>(C::ln2_hi), z);
    r = fma(-k, splat<V>(C::ln2_lo), r);
    const V p = exp_poly(r);
#if defined(__AVX512F__)
    if constexpr (sizeof(S) == 4)
      return lanes::select(under, splat<V>(S(0)),
                           (V)_mm512_scalef_ps((__m512)p, (__m512)(k + S(N))));
    else
      return lanes::select(under, splat<V>(S(0)),
                           (V)_mm512_scalef_pd((__m512d)p, (__m512d)(k + S(N))));
#else
    // bits of 2^(k + N + 64): (k + N + 64 + bias) << mant_bits, k from the bit patterns
    // (unsigned, wrapping: for NaN z the value is arbitrary and the result NaN anyway)
    const auto offset = static_cast<typename lanes::Traits<S>::UInt>(N + 64 + C::exp_bias) -
                        lanes::as_bits(C::round_magic);
    const V scale = lanes::from_bits((UInt)((lanes::as_bits(biased) + offset) << C::mant_bits));
    return lanes::select(under, splat<V>(S(0)), (p * scale) * S(0x1p-64));
#endif
  }
}

}  // namespace vmath
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
