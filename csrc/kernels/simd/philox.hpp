// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror & Shaw,
// "Parallel random numbers: as easy as 1, 2, 3" (SC'11), as specified by Random123.
// Stateless: a block of four 32-bit words is a function of a 128-bit counter and a
// 64-bit key.  Checked against the Random123 known-answer vectors in the tests.
#pragma once

#include <cstdint>
#include <cstring>

#include "gumbel_softmax/kernels.hpp"
#include "simd/lanes.hpp"

#include "simd/target.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {

namespace philox {

constexpr uint32_t kMul0 = 0xD2511F53u;  // round multipliers
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // key schedule increments (golden ratio, sqrt(3)-1)
constexpr uint32_t kWeyl1 = 0xBB67AE85u;
constexpr int kRounds = 10;

// One Philox4x32 round on (c0, c1, c2, c3) with round key (k0, k1).
inline void round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0,
                  uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
  const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
  const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
  const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
  c1 = static_cast<uint32_t>(p1);
  c3 = static_cast<uint32_t>(p0);
  c0 = n0;
  c2 = n2;
}

// philox4x32_10(counter, key): out[i] = word i of the block.
inline void block(const uint32_t ctr[4], PhiloxKey key, uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    round(c0, c1, c2, c3, k0, k1);
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// The random words w = first_word, ..., first_word + n - 1 of absolute row q (see the
// stream layout in README.md): word(q, w) = block((w / 4, 0, q_lo, q_hi), key)[w % 4].
// first_word must be a multiple of 4.  Blocks are independent, so the loop vectorises
// across blocks.
inline void row_words(PhiloxKey key, uint64_t q, uint64_t first_word, int64_t n, uint32_t* out) {
  const uint32_t q_lo = static_cast<uint32_t>(q);
  const uint32_t q_hi = static_cast<uint32_t>(q >> 32);
  const int64_t full = n / 4;
  uint32_t b = static_cast<uint32_t>(first_word / 4);
  for (int64_t i = 0; i < full; ++i, ++b) {
    const uint32_t ctr[4] = {b, 0u, q_lo, q_hi};
    block(ctr, key, out + 4 * i);
  }
  if (n % 4) {
    const uint32_t ctr[4] = {b, 0u, q_lo, q_hi};
    uint32_t tail[4];
    block(ctr, key, tail);
    for (int64_t j = 0; j < n % 4; ++j) out[4 * full + j] = tail[j];
  }
}

#ifdef GS_HAVE_VECTOR_EXT
using lanes::VU32;
using lanes::VU64;
constexpr int kBlockLanes = lanes::width<lanes::VF32>();  // blocks per vector step

// (a & 0xffffffff) * m in each 64-bit lane: the 32 x 32 -> 64 multiply of the even
// 32-bit lanes (pmuludq where available).
GS_INLINE VU64 mul_even(VU64 a, uint32_t m) {
#if defined(__AVX512F__)
  return (VU64)_mm512_mul_epu32((__m512i)a, _mm512_set1_epi64(m));
#elif defined(__AVX2__)
  return (VU64)_mm256_mul_epu32((__m256i)a, _mm256_set1_epi64x(m));
#elif defined(__SSE2__)
  return (VU64)_mm_mul_epu32((__m128i)a, _mm_set1_epi64x(m));
#else
  return (a & 0xffffffffull) * static_cast<uint64_t>(m);
#endif
}

// kBlockLanes blocks at once, lane i = block i: the same rounds as block().  (Running
// two such sets interleaved was slower on AVX2: 16 registers do not hold both.)
// Inside the rounds each vector of 32-bit lanes is kept as two vectors of
// 64-bit lanes (even lanes, odd lanes) whose low halves hold the values: pmuludq then
// multiplies them directly, the high products are one shift away, and the high halves
// of the 64-bit lanes carry garbage that no later step reads (pmuludq ignores it, XOR
// keeps the halves apart, the final packing drops it).
GS_INLINE void block_lanes(VU32& c0, VU32& c1, VU32& c2, VU32& c3, PhiloxKey key) {
  VU64 e0 = (VU64)c0, e1 = (VU64)c1, e2 = (VU64)c2, e3 = (VU64)c3;
  VU64 o0 = e0 >> 32, o1 = e1 >> 32, o2 = e2 >> 32, o3 = e3 >> 32;
  uint64_t k0 = key.k0, k1 = key.k1;
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      k0 = static_cast<uint32_t>(k0 + kWeyl0);
      k1 = static_cast<uint32_t>(k1 + kWeyl1);
    }
    const VU64 pe0 = mul_even(e0, kMul0), pe1 = mul_even(e2, kMul1);
    const VU64 po0 = mul_even(o0, kMul0), po1 = mul_even(o2, kMul1);
    e0 = (pe1 >> 32) ^ e1 ^ k0;
    e2 = (pe0 >> 32) ^ e3 ^ k1;
    e1 = pe1;
    e3 = pe0;
    o0 = (po1 >> 32) ^ o1 ^ k0;
    o2 = (po0 >> 32) ^ o3 ^ k1;
    o1 = po1;
    o3 = po0;
  }
  const uint64_t low = 0xffffffffull;
  c0 = (VU32)((e0 & low) | (o0 << 32));
  c1 = (VU32)((e1 & low) | (o1 << 32));
  c2 = (VU32)((e2 & low) | (o2 << 32));
  c3 = (VU32)((e3 & low) | (o3 << 32));
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define GS_HAVE_SHUFFLEVECTOR 1
#endif

// Stores the words of kBlockLanes blocks in stream order (word 4 i + j = word j of block
// i): a 4 x W transpose, as two rounds of interleaving (32-bit, then 64-bit pairs).
GS_INLINE void store_blocks(VU32 c0, VU32 c1, VU32 c2, VU32 c3, uint32_t* o) {
#ifdef GS_HAVE_SHUFFLEVECTOR
#if defined(__AVX512F__)
#define GS_ZIP32_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define GS_ZIP32_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#define GS_ZIP64_LO 0, 8, 1, 9, 2, 10, 3, 11
#define GS_ZIP64_HI 4, 12, 5, 13, 6, 14, 7, 15
#elif defined(__AVX2__)
#define GS_ZIP32_LO 0, 8, 1, 9, 2, 10, 3, 11
#define GS_ZIP32_HI 4, 12, 5, 13, 6, 14, 7, 15
#define GS_ZIP64_LO 0, 4, 1, 5
#define GS_ZIP64_HI 2, 6, 3, 7
#else
#define GS_ZIP32_LO 0, 4, 1, 5
#define GS_ZIP32_HI 2, 6, 3, 7
#define GS_ZIP64_LO 0, 2
#define GS_ZIP64_HI 1, 3
#endif
  const VU64 a = (VU64)__builtin_shufflevector(c0, c1, GS_ZIP32_LO);
  const VU64 b = (VU64)__builtin_shufflevector(c0, c1, GS_ZIP32_HI);
  const VU64 c = (VU64)__builtin_shufflevector(c2, c3, GS_ZIP32_LO);
  const VU64 d = (VU64)__builtin_shufflevector(c2, c3, GS_ZIP32_HI);
  const VU64 w[4] = {
      __builtin_shufflevector(a, c, GS_ZIP64_LO), __builtin_shufflevector(a, c, GS_ZIP64_HI),
      __builtin_shufflevector(b, d, GS_ZIP64_LO), __builtin_shufflevector(b, d, GS_ZIP64_HI)};
  std::memcpy(o, w, sizeof w);
#undef GS_ZIP32_LO
#undef GS_ZIP32_HI
#undef GS_ZIP64_LO
#undef GS_ZIP64_HI
#else
  for (int k = 0; k < kBlockLanes; ++k) {
    o[4 * k] = c0[k];
    o[4 * k + 1] = c1[k];
    o[4 * k + 2] = c2[k];
    o[4 * k + 3] = c3[k];
  }
#endif
}

// Words first_word .. first_word + 4 * kBlockLanes * nsteps - 1 of row q, in stream order.
GS_INLINE void row_words_lanes(PhiloxKey key, uint64_t q, uint64_t first_word, int64_t nsteps,
                               uint32_t* out) {
  VU32 iota;
  for (int i = 0; i < kBlockLanes; ++i) iota[i] = static_cast<uint32_t>(i);
  const uint32_t b0 = static_cast<uint32_t>(first_word / 4);
  for (int64_t i = 0; i < nsteps; ++i) {
    VU32 c0 = iota + (b0 + static_cast<uint32_t>(kBlockLanes * i));
    VU32 c1 = VU32{};
    VU32 c2 = VU32{} + static_cast<uint32_t>(q);
    VU32 c3 = VU32{} + static_cast<uint32_t>(q >> 32);
    block_lanes(c0, c1, c2, c3, key);
    store_blocks(c0, c1, c2, c3, out + 4 * kBlockLanes * i);
  }
}
#endif  // GS_HAVE_VECTOR_EXT

}  // namespace philox
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
