// Per-target row machinery, part 4: short rows, several rows at once (one per vector
// lane), with their noise drawn for the whole group.
#pragma once

#include "rows/pass1.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {

// The switch of the short-row path (one per target, shared by its op files; for
// tests/test_targets.py only).
inline std::atomic<bool> g_short_rows{true};

namespace {

// ----- short rows, vectorised across rows -----------------------------------------
// Rows of at most kShortMax elements are computed kW rows at a time with one row per
// vector lane, so that per-row overhead and the unused lanes of a short row cost
// nothing.  Every lane performs exactly the row-wise operations in the row-wise order:
// the same max/argmax scan, the same exp, the same 16 partial sums (partial m holds
// element m, then m + 16, ...) and the same pairwise combination, so the results are
// bitwise those of the row-wise path (tests/test_targets.py compares the two).
constexpr int64_t kShortMax = 32;

#ifdef GS_HAVE_VECTOR_EXT
template <class T>
bool use_short_rows(int64_t len) {
  return len <= kShortMax && g_short_rows.load(std::memory_order_relaxed);
}

// Noise of rows r0 .. r0 + g - 1 (g <= kW<T>) of length len <= kShortMax: the Philox
// blocks of all rows are computed together (lane = (row, block)); g holds row i at
// g + i * stride: the Gumbel noise, E = -log(U) (exponential: for tau = 1) or the
// logistic noise.  Returns stride (elements).
enum class Draw { gumbel, exponential, logistic };

template <class T>
struct ShortNoise {
  static constexpr int64_t kMaxWords = kShortMax * words_per_element<T>();
  static constexpr int64_t kStep = 4 * philox::kBlockLanes;  // words per Philox step
  static constexpr int64_t kWords = ((kW<T> * kMaxWords + kStep - 1) / kStep) * kStep;
  alignas(64) uint32_t words[kWords];
  alignas(64) T g[kWords / words_per_element<T>() + kW<T>];

  int64_t fill(PhiloxKey key, uint64_t first_row, int64_t r0, int64_t nrows, int64_t len,
               Draw draw = Draw::gumbel) {
    constexpr int wpe = words_per_element<T>();
    constexpr int BL = philox::kBlockLanes;
    const int64_t nb = (len * wpe + 3) / 4;  // blocks per row
    if (nb == 0) return 0;                   // rows of length 0: no noise
    const int64_t nblocks = nrows * nb;
    // Lane l = (row l / nb, block l % nb); spare lanes repeat the last block.  l / nb
    // is a multiply and shift, exact since l * (ceil(2^16 / nb) * nb - 2^16) < 2^16
    // (l < 8 * 16 here).
    using philox::VU32;
    VU32 iota;
    for (int j = 0; j < BL; ++j) iota[j] = static_cast<uint32_t>(j);
    const uint32_t nb32 = static_cast<uint32_t>(nb);
    const uint32_t inv = (65536u + nb32 - 1) / nb32;
    const uint32_t last = static_cast<uint32_t>(nblocks - 1);
    const uint64_t q0 = first_row + static_cast<uint64_t>(r0);
    const uint32_t q0_lo = static_cast<uint32_t>(q0), q0_hi = static_cast<uint32_t>(q0 >> 32);
    for (int64_t l0 = 0; l0 < nblocks; l0 += BL) {
      VU32 l = iota + static_cast<uint32_t>(l0);
      l = (VU32)(l > last ? (VU32{} + last) : l);
      const VU32 row = (l * inv) >> 16;
      VU32 c0 = l - row * nb32;
      VU32 c2 = row + q0_lo;                          // low word of the row number ...
      VU32 c3 = (VU32{} + q0_hi) - (VU32)(c2 < row);  // ... and the high word, with carry
      VU32 c1 = VU32{};
      philox::block_lanes(c0, c1, c2, c3, key);
      philox::store_blocks(c0, c1, c2, c3, words + 4 * l0);
    }
    using V = Vec<T>;
    using U = lanes::UInt<V>;
    const int64_t nelem = nblocks * 4 / wpe;
    for (int64_t i = 0; i < nelem; i += kW<T>) {
      const U b = lanes::load_bits<U>(words + i * wpe);
      lanes::store(g + i, draw == Draw::exponential ? bits_to_exponential<V>(b)
                          : draw == Draw::logistic  ? bits_to_logistic<V>(b)
                                                    : bits_to_gumbel<V>(b));
    }
    return nb * 4 / wpe;
  }
};

// Runs body(r0, n) over groups of kW<T> rows (n <= kW<T> rows each), statically split
// over threads.
template <class T, class Body>
void for_groups(int64_t nrows, int64_t len, Body&& body) {
  const int64_t ngroups = (nrows + kW<T> - 1) / kW<T>;
  const int nthreads = static_cast<int>(std::min<int64_t>(threads_for(nrows, len), ngroups));
  for_rows(ngroups, nthreads, [&](int64_t grp, int) {
    const int64_t r0 = grp * kW<T>;
    body(r0, std::min<int64_t>(kW<T>, nrows - r0));
  });
}

#else
template <class T>
bool use_short_rows(int64_t) {
  return false;
}
#endif

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
