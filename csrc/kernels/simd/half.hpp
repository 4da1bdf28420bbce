// float32 <-> float16 / bfloat16 conversions on 32-bit integer lanes (a uint32_t or a
// vector of them), bit for bit those of NumPy's float16 cast and ml_dtypes' bfloat16
// cast: round to nearest, ties to even, subnormals kept, NaN payloads as described.
// Written with integer arithmetic and one float addition, so every SIMD target (and the
// scalar fallback) gives the same bits without F16C.
#pragma once

#include <cstdint>

#include "simd/lanes.hpp"

#include "simd/target.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace half {

// binary16 bits (in the low 16 bits of each lane) -> float32 bits.  Exact.
//   e = 31: inf / NaN, the payload shifted into the top of float32's mantissa;
//   e = 0:  m * 2^-24, computed as (1 + m/1024) 2^-14 - 2^-14 (exact);
//   else:   exponent rebiased by 127 - 15 = 112.
template <class U>
GS_INLINE U f16_to_f32_bits(U h) {
  const U sign = (h & 0x8000u) << 16;
  const U e = (h >> 10) & 0x1fu;
  const U m = h & 0x3ffu;
  const U normal = ((e + 112u) << 23) | (m << 13);
  const U inf_nan = 0x7f800000u | (m << 13);
  const U sub = lanes::as_bits(lanes::from_bits(U{} + ((113u << 23) | (m << 13))) - 0x1p-14f);
  return sign | (e == 31u ? inf_nan : (e == 0u ? sub : normal));
}

// float32 bits -> binary16 bits, round to nearest even.
//   |x| >= 2^16 (and inf, NaN): inf, or a NaN keeping the payload's top 10 bits (at
//     least one set, so it stays a NaN), as NumPy does;
//   |x| <  2^-14: the float addition |x| + 0.5 rounds |x| to a multiple of 2^-24 (the
//     half subnormal step, an ulp of 0.5), whose low bits are the half's;
//   otherwise: rebias, add half an ulp (0xfff) plus the kept lsb (ties to even) and
//     shift; a carry past the largest half gives inf.
template <class U>
GS_INLINE U f32_to_f16_bits(U u) {
  const U sign = (u >> 16) & 0x8000u;
  const U a = u & 0x7fffffffu;
  const U payload = (a >> 13) & 0x3ffu;
  const U nan = 0x7c00u | (payload == 0u ? U{} + 1u : payload);
  const U big = a > 0x7f800000u ? nan : U{} + 0x7c00u;
  const U sub = lanes::as_bits(lanes::from_bits(a) + 0.5f) - 0x3f000000u;
  const U odd = (a >> 13) & 1u;
  const U normal = (a - ((127u - 15u) << 23) + 0xfffu + odd) >> 13;
  return sign | (a >= (143u << 23) ? big : (a < (113u << 23) ? sub : normal));
}

// bfloat16 <-> float32: the top 16 bits; rounding to nearest even by adding 0x7fff plus
// the kept lsb (a carry into the exponent gives the next binade or inf); NaN becomes
// the quiet NaN 0x7fc0 with its sign, as ml_dtypes does.
template <class U>
GS_INLINE U bf16_to_f32_bits(U h) {
  return h << 16;
}
template <class U>
GS_INLINE U f32_to_bf16_bits(U u) {
  const U rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const U nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  return (u & 0x7fffffffu) > 0x7f800000u ? nan : rounded;
}

}  // namespace half
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
