// Random bits -> standard Gumbel noise, the formula documented in docs/contract.md:
//
//   s = top bit of the element's n random bits, m = the other n - 1 bits,
//   t = RN((m + 1/2) * 2^-n)                  in [2^-(n+1), 1/2], rounded once
//   E = -log(t)     (s = 0, the uniform is U = t)
//   E = -log1p(-t)  (s = 1, the uniform is U = 1 - t)
//   g = -log(E)
//
// t carries the full resolution of the bits at both ends of (0, 1), so E keeps it in
// both tails, E lies in [2^-(n+1)(1 - 2^-(n+1)), (n+1) ln 2] and g is always finite:
// float32 g in [-3.13, 22.88], float64 g in [-3.81, 45.06] (the top: (n + 1) ln 2, n = 32, 64).
//
// log(U) is evaluated as e*ln2 + log(1+f) with (e, f) exact in all three cases:
//   s = 0:               t = 2^e (1+f) from the bits of t;
//   s = 1, t <= 1 - sqrt(1/2):  e = 0,  f = -t;
//   s = 1, t >  1 - sqrt(1/2):  e = -1, f = 1 - 2t   (exact: 2t in (0.58, 1], so one FMA).
// so one log1p_reduced gives E and a second one gives g.
//   lanes:  float32 (one 32-bit word), float64 (two words, low word first)
//   error:  |g - g_exact(t)| <= 4 eps (1 + |g|) (tests/test_stream.py, test_vmath.py)
#pragma once

#include <cstdint>
#include <type_traits>

#include "simd/lanes.hpp"
#include "simd/vmath.hpp"

#include "simd/target.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {

// t = RN((m + 1/2) 2^-n) from the element's bits b (lane type V: float32 lanes take
// 32-bit words, float64 lanes 64-bit values word(2c) | word(2c+1) << 32); upper = the
// top bit.  Every step but the last addition is exact, so t is rounded once:
//   float32: m >> 8 (23 bits) and (m & 255) + 1/2 are exact; (m >> 8) 2^8 + ... rounds.
//   float64: m >> 32 (31 bits), and m mod 2^32 split into 16-bit halves (+ 1/2) are exact;
//            (m >> 32) 2^32 + ... rounds.
template <class V>
GS_INLINE V uniform_half(lanes::UInt<V> b, lanes::Mask<V>& upper) {
  using S = typename lanes::Traits<V>::Scalar;
  using UInt = lanes::UInt<V>;
  using Int = lanes::Int<V>;
  using lanes::small_int_to_float;
  if constexpr (sizeof(S) == 4) {
    upper = (lanes::Mask<V>)((Int)b < 0);
#if defined(__AVX512F__)
    if constexpr (!std::is_same_v<V, float>) {
      // t = RN(2m + 1) 2^-33: one unsigned conversion of the odd 32-bit (b << 1) | 1,
      // rounded once to nearest, gives the same bits.
      return (V)_mm512_cvtepu32_ps((__m512i)((b << 1) | 1u)) * 0x1p-33f;
    }
#endif
    // m = b & 0x7fffffff; m >> 8 as two shifts, which need no constant vector
    const V hi = small_int_to_float((Int)((b << 1) >> 9));
    const V lo = small_int_to_float((Int)(b & 0xffu)) + 0.5f;
    return lanes::fma(hi, lanes::splat<V>(256.0f), lo) * 0x1p-32f;  // hi 256 is exact
  } else {
    upper = (lanes::Mask<V>)((b >> 63) != 0u);
    const UInt m = b & 0x7fffffffffffffffull;
    const V hi = small_int_to_float((Int)(m >> 32));
    const V mid = small_int_to_float((Int)((m >> 16) & 0xffffu));
    const V lo = small_int_to_float((Int)(m & 0xffffu)) + 0.5;
    return (hi * 0x1p32 + (mid * 65536.0 + lo)) * 0x1p-64;
  }
}

// 1 - sqrt(1/2) rounded to the lane's precision: the split between the cases e = 0 and
// e = -1 (at the split f = -t may leave the reduced range by an ulp, which
// log1p_reduced tolerates).
template <class S>
constexpr S one_minus_sqrt_half() {
  return static_cast<S>(0.29289321881345247);
}

// AVX2 without AVX-512 (vectors of 32 bytes, masks in vector registers): two selects
// below take fewer instructions there, with the same bits (AVX-512 selects with mask
// registers in one instruction and keeps lanes::select).
#if defined(__AVX2__) && !defined(__AVX512F__)
template <class V>
constexpr bool kAvx2Vector = sizeof(V) == 32;
#else
template <class V>
constexpr bool kAvx2Vector = false;
#endif

// x where the top bit of the element's bits b is set (upper, from uniform_half), else y.
// On AVX2 one blend on the sign of b itself, so no compare forms the mask.  Inline
// assembly, because GCC folds the blendv intrinsics back into a compare and a blend.
template <class V>
GS_INLINE V select_upper(lanes::UInt<V> b, lanes::Mask<V> upper, V x, V y) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (kAvx2Vector<V>) {
    V r;
    if constexpr (sizeof(typename lanes::Traits<V>::Scalar) == 4)
      asm("vblendvps %3, %2, %1, %0" : "=x"(r) : "x"(y), "x"(x), "x"(b));
    else
      asm("vblendvpd %3, %2, %1, %0" : "=x"(r) : "x"(y), "x"(x), "x"(b));
    return r;
  }
#endif
  (void)b;
  return lanes::select(upper, x, y);
}

// (e, f) with 1 - t = 2^e (1 + f), both exact, for t in (0, 1/2] (the s = 1 cases above).
template <class V>
GS_INLINE void reduce_one_minus(V t, V& e, V& f) {
  using S = typename lanes::Traits<V>::Scalar;
  const lanes::Mask<V> far = t > one_minus_sqrt_half<S>();  // t is never NaN
  if constexpr (kAvx2Vector<V> && sizeof(S) == 4)
    e = lanes::small_int_to_float(far);  // the mask is the int -1 where far: one conversion
  else
    e = lanes::select(far, lanes::splat<V>(S(-1)), lanes::splat<V>(S(0)));
  f = lanes::select(far, lanes::fma(lanes::splat<V>(S(-2)), t, lanes::splat<V>(S(1))), -t);
}

// E = -log(U), the standard exponential variate of the bits (the first log above).
template <class V>
GS_INLINE V bits_to_exponential(lanes::UInt<V> b) {
  using lanes::select;
  lanes::Mask<V> upper;
  const V t = uniform_half<V>(b, upper);
  // (e, f) with U = 2^e (1 + f) for each case, chosen without branches.
  V e_low, f_low, e_high, f_high;
  vmath::log_reduce(t, e_low, f_low);
  reduce_one_minus(t, e_high, f_high);
  return -vmath::log_combine(select_upper(b, upper, e_high, e_low),
                             select_upper(b, upper, f_high, f_low));
}

// g = -log(E).
template <class V>
GS_INLINE V bits_to_gumbel(lanes::UInt<V> b) {
  return -vmath::log(bits_to_exponential<V>(b));
}

// L = log(U) - log(1 - U), standard logistic noise from the same bits (relaxed
// Bernoulli).  With t and the top bit s as above, logit(1 - t) = -logit(t), so
//   L = log(t) - log1p(-t)  (s = 0),   L = -(log(t) - log1p(-t))  (s = 1):
// both logs take exact reduced arguments (log1p(-t) as in the s = 1 case of E), L is
// exactly antisymmetric in s, always finite, |L| <= (n + 1) ln 2.
template <class V>
GS_INLINE V bits_to_logistic(lanes::UInt<V> b) {
  lanes::Mask<V> upper;
  const V t = uniform_half<V>(b, upper);
  V e_t, f_t, e_c, f_c;
  vmath::log_reduce(t, e_t, f_t);
  reduce_one_minus(t, e_c, f_c);
  const V d = vmath::log_combine(e_t, f_t) - vmath::log_combine(e_c, f_c);
  return select_upper(b, upper, -d, d);
}

// Words per element of each dtype in the stream.
template <class S>
constexpr int words_per_element() {
  return sizeof(S) / sizeof(uint32_t);
}

// The element's bits from the row's words (scalar lanes).
GS_INLINE uint32_t element_bits(const uint32_t* w, int64_t c, float) { return w[c]; }
GS_INLINE uint64_t element_bits(const uint32_t* w, int64_t c, double) {
  return static_cast<uint64_t>(w[2 * c]) | (static_cast<uint64_t>(w[2 * c + 1]) << 32);
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax
