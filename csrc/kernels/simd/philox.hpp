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
// stream layout in docs/contract.md): word(q, w) = block((w / 4, 0, q_lo, q_hi), key)[w % 4].
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
// Lane i uses the key (k0[i], k1[i]) (ForwardArgs::row_keys; block_lanes below splats one
// key).  The keys are split into even and odd lanes as the words are; the key schedule's additions
// wrap in the low halves, and the high halves carry garbage that no step reads.
GS_INLINE void block_lanes(VU32& c0, VU32& c1, VU32& c2, VU32& c3, VU32 k0, VU32 k1) {
  VU64 e0 = (VU64)c0, e1 = (VU64)c1, e2 = (VU64)c2, e3 = (VU64)c3;
  VU64 o0 = e0 >> 32, o1 = e1 >> 32, o2 = e2 >> 32, o3 = e3 >> 32;
  VU64 ke0 = (VU64)k0, ke1 = (VU64)k1;
  VU64 ko0 = ke0 >> 32, ko1 = ke1 >> 32;
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      ke0 += kWeyl0;
      ko0 += kWeyl0;
      ke1 += kWeyl1;
      ko1 += kWeyl1;
    }
    const VU64 pe0 = mul_even(e0, kMul0), pe1 = mul_even(e2, kMul1);
    const VU64 po0 = mul_even(o0, kMul0), po1 = mul_even(o2, kMul1);
    e0 = (pe1 >> 32) ^ e1 ^ ke0;
    e2 = (pe0 >> 32) ^ e3 ^ ke1;
    e1 = pe1;
    e3 = pe0;
    o0 = (po1 >> 32) ^ o1 ^ ko0;
    o2 = (po0 >> 32) ^ o3 ^ ko1;
    o1 = po1;
    o3 = po0;
  }
  const uint64_t low = 0xffffffffull;
  c0 = (VU32)((e0 & low) | (o0 << 32));
  c1 = (VU32)((e1 & low) | (o1 << 32));
  c2 = (VU32)((e2 & low) | (o2 << 32));
  c3 = (VU32)((e3 & low) | (o3 << 32));
}

GS_INLINE void block_lanes(VU32& c0, VU32& c1, VU32& c2, VU32& c3, PhiloxKey key) {
  block_lanes(c0, c1, c2, c3, VU32{} + key.k0, VU32{} + key.k1);
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

// The 32-bit lanes (low half of e's lane k, low half of o's lane k), k = 0, 1, ...
GS_INLINE VU32 pack(VU64 e, VU64 o) {
#if defined(__AVX512F__)
  return (VU32)_mm512_mask_blend_epi32(0xAAAA, (__m512i)e, (__m512i)(o << 32));
#elif defined(__AVX2__)
  return (VU32)_mm256_blend_epi32((__m256i)e, (__m256i)(o << 32), 0xAA);
#else
  return (VU32)((e & 0xffffffffull) | (o << 32));
#endif
}

// The shortcut rounds of RowBlocks and LaneBlocks, two shortcuts that change no bit.
// Their blocks' counters (b, 0, q_lo, q_hi) vary only in word 0 from one step to the
// next, so round 1's product of word 2 and round 2's product of word 0 are the same at
// every step; they are computed once, with the constants they feed.  A round maps
// (c0, c1, c2, c3) with key (k0, k1) to (hi(p1) ^ c1 ^ k0, lo(p1), hi(p0) ^ c3 ^ k1,
// lo(p0)), p0 = kMul0 c0, p1 = kMul1 c2:
//   round 1:  (A, B, hi(kMul0 b) ^ q_hi ^ k1_1, lo(kMul0 b)),
//             A = hi(kMul1 q_lo) ^ k0_1 and B = lo(kMul1 q_lo) constant;
//   round 2:  word 0 = hi(p1) ^ (B ^ k0_2), word 2 = lo(kMul0 b) ^ (hi(kMul0 A) ^ k1_2),
//             word 3 = D = lo(kMul0 A) constant;
//   round 3:  word 2 = hi(p0) ^ (D ^ k1_3);
// every constant in parentheses is one vector (ShortcutConsts).  The round keys are splat
// into vectors once (RoundKeys), not in every round.  Values sit in the low halves of
// 64-bit lanes, as in block_lanes; the high halves carry garbage that no step reads.
struct RoundKeys {
  VU64 k0[kRounds], k1[kRounds];
  explicit RoundKeys(PhiloxKey key) {
    uint32_t a = key.k0, b = key.k1;
    for (int r = 0; r < kRounds; ++r, a += kWeyl0, b += kWeyl1) {
      k0[r] = VU64{} + a;
      k1[r] = VU64{} + b;
    }
  }
};

struct ShortcutConsts {
  VU64 round1_c2, round2_c0, round2_c2, round3_c2;
  // For the counters whose words 2 and 3 are q_lo and q_hi (low halves).
  ShortcutConsts(PhiloxKey key, VU64 q_lo, VU64 q_hi) {
    const VU64 p1 = mul_even(q_lo, kMul1);                 // round 1: A = hi(p1) ^ k0_1, B = lo(p1)
    const VU64 p0 = mul_even((p1 >> 32) ^ key.k0, kMul0);  // round 2: kMul0 A
    round1_c2 = q_hi ^ key.k1;
    round2_c0 = p1 ^ static_cast<uint32_t>(key.k0 + kWeyl0);
    round2_c2 = (p0 >> 32) ^ static_cast<uint32_t>(key.k1 + kWeyl1);
    round3_c2 = p0 ^ static_cast<uint32_t>(key.k1 + 2 * kWeyl1);
  }
};

// The ten rounds of the blocks whose word 0 is b (low halves), with the shortcuts above.
GS_INLINE void shortcut_rounds(VU64 b, const ShortcutConsts& s, const RoundKeys& k, VU64& c0,
                               VU64& c1, VU64& c2, VU64& c3) {
  const VU64 p0 = mul_even(b, kMul0);                         // round 1: word 3 is p0
  const VU64 p1 = mul_even((p0 >> 32) ^ s.round1_c2, kMul1);  // round 2
  c0 = (p1 >> 32) ^ s.round2_c0;
  c1 = p1;
  c2 = p0 ^ s.round2_c2;
  const VU64 q0 = mul_even(c0, kMul0), q1 = mul_even(c2, kMul1);  // round 3
  c0 = (q1 >> 32) ^ c1 ^ k.k0[2];
  c2 = (q0 >> 32) ^ s.round3_c2;
  c1 = q1;
  c3 = q0;
  for (int r = 3; r < kRounds; ++r) {
    const VU64 s0 = mul_even(c0, kMul0), s1 = mul_even(c2, kMul1);
    c0 = (s1 >> 32) ^ c1 ^ k.k0[r];
    c2 = (s0 >> 32) ^ c3 ^ k.k1[r];
    c1 = s1;
    c3 = s0;
  }
}

// The blocks of one row, kBlockLanes at a time (lane i = block i): shortcut_rounds, whose
// constants are the row's.
class RowBlocks {
 public:
  RowBlocks(PhiloxKey key, uint64_t q)
      : keys_(key),
        consts_(key, VU64{} + static_cast<uint32_t>(q), VU64{} + static_cast<uint32_t>(q >> 32)) {
    for (int i = 0; i < kBlockLanes / 2; ++i) iota_[i] = static_cast<uint64_t>(2 * i);
  }

  // Words first_word .. first_word + 4 * kBlockLanes * nsteps - 1 of the row, in stream
  // order (first_word a multiple of 4).
  GS_INLINE void words(uint64_t first_word, int64_t nsteps, uint32_t* out) const {
    const uint32_t b0 = static_cast<uint32_t>(first_word / 4);
    for (int64_t i = 0; i < nsteps; ++i) {
      // blocks b0 + kBlockLanes i + 2k (even) and + 2k + 1 (odd) in 64-bit lane k; the
      // block index wraps at 2^32 like the scalar counter (upper halves are ignored)
      const VU64 b = iota_ + static_cast<uint64_t>(b0 + static_cast<uint32_t>(kBlockLanes * i));
      VU64 e0, e1, e2, e3, o0, o1, o2, o3;
      shortcut_rounds(b, consts_, keys_, e0, e1, e2, e3);
      shortcut_rounds(b + 1, consts_, keys_, o0, o1, o2, o3);
      store_blocks(pack(e0, o0), pack(e1, o1), pack(e2, o2), pack(e3, o3),
                   out + 4 * kBlockLanes * i);
    }
  }

 private:
  RoundKeys keys_;
  ShortcutConsts consts_;
  VU64 iota_;
};

// One block of each of kBlockLanes rows at a time (lane i = a block of row (q_lo[i],
// q_hi[i]): the short rows' columns): shortcut_rounds, whose constants are per lane, one
// set for the even lanes and one for the odd.
class LaneBlocks {
 public:
  LaneBlocks(PhiloxKey key, VU32 q_lo, VU32 q_hi)
      : keys_(key),
        even_(key, (VU64)q_lo, (VU64)q_hi),
        odd_(key, (VU64)q_lo >> 32, (VU64)q_hi >> 32) {}

  // In: c0 = each lane's block index (word 0 of its counter); out: the block's four words.
  GS_INLINE void block(VU32& c0, VU32& c1, VU32& c2, VU32& c3) const {
    VU64 e0, e1, e2, e3, o0, o1, o2, o3;
    shortcut_rounds((VU64)c0, even_, keys_, e0, e1, e2, e3);
    shortcut_rounds((VU64)c0 >> 32, odd_, keys_, o0, o1, o2, o3);
    c0 = pack(e0, o0);
    c1 = pack(e1, o1);
    c2 = pack(e2, o2);
    c3 = pack(e3, o3);
  }

 private:
  RoundKeys keys_;
  ShortcutConsts even_, odd_;
};

// Words first_word .. first_word + 4 * kBlockLanes * nsteps - 1 of row q, in stream order.
GS_INLINE void row_words_lanes(PhiloxKey key, uint64_t q, uint64_t first_word, int64_t nsteps,
                               uint32_t* out) {
  RowBlocks(key, q).words(first_word, nsteps, out);
}
#endif  // GS_HAVE_VECTOR_EXT

}  // namespace philox
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
