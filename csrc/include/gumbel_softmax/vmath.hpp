// Elementary functions of the kernels: log(1+f) on the reduced range, log, exp.
//
// Every function here is written once, as branch-free straight-line code of IEEE
// operations (add, mul, div, explicit fused multiply-add, integer bit operations), so
// that a SIMD translation performs the same operations in the same order and produces
// the same bits.  The build compiles with -ffp-contract=off: the compiler never fuses on
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

#include <cmath>
#include <cstdint>
#include <cstring>

namespace gumbel_softmax {
namespace vmath {

template <class To, class From>
inline To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast size");
  To r;
  std::memcpy(&r, &v, sizeof(r));
  return r;
}

// fma(a, b, c) = a*b + c rounded once.  std::fma is correctly rounded on every target
// (hardware FMA where the target has it, glibc's exact emulation otherwise).
inline float fma(float a, float b, float c) { return std::fma(a, b, c); }
inline double fma(double a, double b, double c) { return std::fma(a, b, c); }

template <class T>
struct Consts;

template <>
struct Consts<float> {
  using Int = int32_t;
  using UInt = uint32_t;
  static constexpr int mant_bits = 23;
  static constexpr UInt mant_mask = 0x007fffffu;
  static constexpr UInt sqrt_half_bits = 0x3f3504f3u;  // RN(sqrt(1/2))
  static constexpr float ln2_hi = 0x1.62e4p-1f;        // ln 2 to 17 bits
  static constexpr float ln2_lo = 0x1.7f7d1cp-20f;     // RN(ln 2 - ln2_hi)
  static constexpr float log2e = 0x1.715476p+0f;       // RN(1/ln 2)
  static constexpr float round_magic = 0x1.8p23f;      // x + 1.5*2^23 rounds x to int
  static constexpr int exp_bias = 127;
  // exp: below z_min every result rounds to +0, above z_max to +inf.
  static constexpr float exp_z_min = -104.0f;
  static constexpr float exp_z_max = 89.0f;
};

template <>
struct Consts<double> {
  using Int = int64_t;
  using UInt = uint64_t;
  static constexpr int mant_bits = 52;
  static constexpr UInt mant_mask = 0x000fffffffffffffull;
  static constexpr UInt sqrt_half_bits = 0x3fe6a09e667f3bcdull;
  static constexpr double ln2_hi = 0x1.62e42fefa38p-1;     // ln 2 to 42 bits
  static constexpr double ln2_lo = 0x1.ef35793c7673p-45;   // RN(ln 2 - ln2_hi)
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
//   error:  float32 <= 1 ulp, float64 <= 1 ulp (tests/test_vmath.py sweeps the range)
// The series 2 atanh(s) is cut where the next term is below 2^-30 (float32) or 2^-60
// (float64) of the result: 4 terms of R for float32, 10 for float64.
inline float log1p_reduced(float f) {
  const float s = f / (2.0f + f);
  const float s2 = s * s;
  float r = 2.0f / 9.0f;
  r = fma(r, s2, 2.0f / 7.0f);
  r = fma(r, s2, 2.0f / 5.0f);
  r = fma(r, s2, 2.0f / 3.0f);
  r = r * s2;
  return f - s * (f - r);
}

inline double log1p_reduced(double f) {
  const double s = f / (2.0 + f);
  const double s2 = s * s;
  double r = 2.0 / 21.0;
  r = fma(r, s2, 2.0 / 19.0);
  r = fma(r, s2, 2.0 / 17.0);
  r = fma(r, s2, 2.0 / 15.0);
  r = fma(r, s2, 2.0 / 13.0);
  r = fma(r, s2, 2.0 / 11.0);
  r = fma(r, s2, 2.0 / 9.0);
  r = fma(r, s2, 2.0 / 7.0);
  r = fma(r, s2, 2.0 / 5.0);
  r = fma(r, s2, 2.0 / 3.0);
  r = r * s2;
  return f - s * (f - r);
}

// e*ln2 + log(1+f), the two-part ln2 keeping e*ln2 exact to the final rounding.
template <class T>
inline T log_combine(T e, T f) {
  return fma(e, Consts<T>::ln2_hi, fma(e, Consts<T>::ln2_lo, log1p_reduced(f)));
}

// Splits a positive normal x into x = 2^e * (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).
// f is exact (Sterbenz).  Integer trick: subtracting the bits of sqrt(1/2) moves the
// mantissa boundary to sqrt(1/2); the exponent field of the difference is e.
template <class T>
inline void log_reduce(T x, T& e, T& f) {
  using C = Consts<T>;
  using UInt = typename C::UInt;
  using Int = typename C::Int;
  const UInt d = bit_cast<UInt>(x) - C::sqrt_half_bits;
  e = static_cast<T>(static_cast<Int>(d) >> C::mant_bits);
  const T m = bit_cast<T>(static_cast<UInt>((d & C::mant_mask) + C::sqrt_half_bits));
  f = m - T(1);
}

// ---------------------------------------------------------------------------------
// log(x)
//   lanes:  float32, float64
//   range:  x positive, normal and finite (the kernels never pass anything else);
//           subnormals, 0, inf, NaN and negatives give unspecified finite or NaN values
//   error:  float32 <= 2 ulp, float64 <= 2 ulp (tests/test_vmath.py)
template <class T>
inline T log(T x) {
  T e, f;
  log_reduce(x, e, f);
  return log_combine(e, f);
}

// ---------------------------------------------------------------------------------
// exp(z)
//   lanes:  float32, float64
//   range:  every z: -inf and z below exp_z_min give +0, z above exp_z_max give +inf,
//           NaN gives NaN; subnormal results are rounded once (not flushed)
//   error:  float32 <= 2 ulp, float64 <= 2 ulp for normal results (tests/test_vmath.py)
inline float exp_poly(float r) {  // e^r, |r| <= 0.35: Taylor to r^7, error < 2^-27
  float p = 1.0f / 5040.0f;
  p = fma(p, r, 1.0f / 720.0f);
  p = fma(p, r, 1.0f / 120.0f);
  p = fma(p, r, 1.0f / 24.0f);
  p = fma(p, r, 1.0f / 6.0f);
  p = fma(p, r, 0.5f);
  p = fma(p, r, 1.0f);
  return fma(p, r, 1.0f);
}

inline double exp_poly(double r) {  // Taylor to r^13, error < 2^-57
  double p = 1.0 / 6227020800.0;
  p = fma(p, r, 1.0 / 479001600.0);
  p = fma(p, r, 1.0 / 39916800.0);
  p = fma(p, r, 1.0 / 3628800.0);
  p = fma(p, r, 1.0 / 362880.0);
  p = fma(p, r, 1.0 / 40320.0);
  p = fma(p, r, 1.0 / 5040.0);
  p = fma(p, r, 1.0 / 720.0);
  p = fma(p, r, 1.0 / 120.0);
  p = fma(p, r, 1.0 / 24.0);
  p = fma(p, r, 1.0 / 6.0);
  p = fma(p, r, 0.5);
  p = fma(p, r, 1.0);
  return fma(p, r, 1.0);
}

template <class T>
inline T exp(T z) {
  using C = Consts<T>;
  using UInt = typename C::UInt;
  using Int = typename C::Int;
  // Clamp; written so that NaN passes through (both comparisons are false for NaN).
  z = (z < C::exp_z_min) ? C::exp_z_min : z;
  z = (z > C::exp_z_max) ? C::exp_z_max : z;
  // k = round-to-nearest-even(z / ln2) by the magic-number addition; the integer k is
  // the difference of the bit patterns, which avoids converting NaN to an integer.
  const T biased = z * C::log2e + C::round_magic;
  const T k = biased - C::round_magic;
  const Int ki = static_cast<Int>(bit_cast<UInt>(biased) - bit_cast<UInt>(C::round_magic));
  T r = fma(-k, C::ln2_hi, z);
  r = fma(-k, C::ln2_lo, r);
  const T p = exp_poly(r);
  // 2^k as 2^k1 * 2^k2 with both halves normal: p * 2^k1 is exact, the second product
  // rounds once even when the result is subnormal.
  const Int k1 = ki >> 1;
  const Int k2 = ki - k1;
  const T s1 = bit_cast<T>(static_cast<UInt>(static_cast<UInt>(k1 + C::exp_bias) << C::mant_bits));
  const T s2 = bit_cast<T>(static_cast<UInt>(static_cast<UInt>(k2 + C::exp_bias) << C::mant_bits));
  return (p * s1) * s2;
}

}  // namespace vmath
}  // namespace gumbel_softmax
