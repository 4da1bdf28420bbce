// Random bits -> standard Gumbel noise, the formula documented in README.md:
//
//   s = top bit of the element's n random bits, m = the other n - 1 bits,
//   t = RN((m + 1/2) * 2^-n)                  in [2^-(n+1), 1/2], rounded once
//   E = -log(t)     (s = 0, the uniform is U = t)
//   E = -log1p(-t)  (s = 1, the uniform is U = 1 - t)
//   g = -log(E)
//
// t carries the full resolution of the bits at both ends of (0, 1), so E keeps it in
// both tails, E lies in [2^-(n+1)(1 - 2^-(n+1)), (n+1) ln 2] and g is always finite:
// float32 g in [-3.13, 22.87], float64 g in [-3.81, 45.05].
//
// log(U) is evaluated as e*ln2 + log(1+f) with (e, f) exact in all three cases:
//   s = 0:               t = 2^e (1+f) from the bits of t;
//   s = 1, t <= 1 - sqrt(1/2):  e = 0,  f = -t;
//   s = 1, t >  1 - sqrt(1/2):  e = -1, f = 1 - 2t   (exact: 2t in (0.58, 1]).
// so one log1p_reduced gives E and a second one gives g.
//   lanes:  float32 (one 32-bit word), float64 (two words, low word first)
//   error:  |g - g_exact(t)| <= 4 eps (1 + |g|) (tests/test_stream.py, test_vmath.py)
#pragma once

#include <cstdint>

#include "gumbel_softmax/vmath.hpp"

namespace gumbel_softmax {

template <class T>
struct NoiseBits;

template <>
struct NoiseBits<float> {
  static constexpr int words_per_element = 1;
  using Bits = uint32_t;
  static Bits load(const uint32_t* w, int64_t c) { return w[c]; }
  // t = RN((m + 1/2) 2^-32): m >> 8 and (m & 255) + 1/2 are exact in float32, the sum
  // (m >> 8) 2^8 + (m & 255) + 1/2 = m + 1/2 rounds once, the scaling is exact.
  static float uniform_half(Bits b, bool& upper) {
    upper = (b >> 31) != 0;
    const uint32_t m = b & 0x7fffffffu;
    const float hi = static_cast<float>(static_cast<int32_t>(m >> 8));
    const float lo = static_cast<float>(static_cast<int32_t>(m & 0xffu)) + 0.5f;
    return (hi * 256.0f + lo) * 0x1p-32f;
  }
};

template <>
struct NoiseBits<double> {
  static constexpr int words_per_element = 2;
  using Bits = uint64_t;
  static Bits load(const uint32_t* w, int64_t c) {
    return static_cast<uint64_t>(w[2 * c]) | (static_cast<uint64_t>(w[2 * c + 1]) << 32);
  }
  // t = RN((m + 1/2) 2^-64): m >> 32 (31 bits) and (m mod 2^32) + 1/2 are exact in
  // float64, their sum rounds once, the scalings are exact.
  static double uniform_half(Bits b, bool& upper) {
    upper = (b >> 63) != 0;
    const uint64_t m = b & 0x7fffffffffffffffull;
    const double hi = static_cast<double>(static_cast<uint32_t>(m >> 32));
    const double lo = static_cast<double>(static_cast<uint32_t>(m)) + 0.5;
    return (hi * 0x1p32 + lo) * 0x1p-64;
  }
};

// 1 - sqrt(1/2) rounded to T: the split between the cases e = 0 and e = -1 (at the
// split f = -t may leave the reduced range by an ulp, which log1p_reduced tolerates).
template <class T>
constexpr T one_minus_sqrt_half() {
  return static_cast<T>(0.29289321881345247);
}

template <class T>
inline T bits_to_gumbel(typename NoiseBits<T>::Bits b) {
  bool upper;
  const T t = NoiseBits<T>::uniform_half(b, upper);
  // (e, f) with U = 2^e (1 + f) for each case, chosen without branches.
  T e_low, f_low;
  vmath::log_reduce(t, e_low, f_low);
  const bool near_one = t <= one_minus_sqrt_half<T>();
  const T e = upper ? (near_one ? T(0) : T(-1)) : e_low;
  const T f = upper ? (near_one ? -t : T(1) - T(2) * t) : f_low;
  const T E = -vmath::log_combine(e, f);
  return -vmath::log(E);
}

}  // namespace gumbel_softmax
