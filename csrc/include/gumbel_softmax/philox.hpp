// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror & Shaw,
// "Parallel random numbers: as easy as 1, 2, 3" (SC'11), as specified by Random123.
// Stateless: a block of four 32-bit words is a function of a 128-bit counter and a
// 64-bit key.  Checked against the Random123 known-answer vectors in the tests.
#pragma once

#include <cstdint>

namespace gumbel_softmax {

struct PhiloxKey {
  uint32_t k0, k1;
};

namespace philox {

constexpr uint32_t kMul0 = 0xD2511F53u;   // round multipliers
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
inline void row_words(PhiloxKey key, uint64_t q, uint64_t first_word, int64_t n,
                      uint32_t* out) {
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

}  // namespace philox
}  // namespace gumbel_softmax
