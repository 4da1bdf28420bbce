// Per-target row machinery, part 4: short rows, several rows at once (one per vector
// lane), with their noise drawn for the whole group.
#pragma once

#include <type_traits>

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

  // The same noise in columns, for the nrows rows r0 .. of a group of kW<T>: returns
  // cols, where cols[c * kW<T> + i] is element c < len of row r0 + i (lanes past the
  // group's rows: finite noise, which nobody writes out).  A group of more than kW / 2 rows runs
  // the Philox lanes as rows (each step's four words are four columns, converted as they come: no
  // transpose, no padding of the rows to whole blocks); a smaller one draws its rows as fill()
  // does, then transposes.
  const T* fill_columns(PhiloxKey key, uint64_t first_row, int64_t r0, int64_t nrows, int64_t len,
                        Draw draw) {
    constexpr int W = kW<T>;
    if (2 * nrows > W) {
      fill_lanes(key, first_row, r0, len, draw);
      return cols;
    }
    const int64_t gs = fill(key, first_row, r0, nrows, len, draw);
    const Vec<T> one = lanes::splat<Vec<T>>(T(1));
    for (int64_t c = 0; c < len; ++c) lanes::store(cols + c * W, one);
    for (int64_t i = 0; i < nrows; ++i)
      for (int64_t c = 0; c < len; ++c) cols[c * W + i] = g[i * gs + c];
    return cols;
  }

  // The same columns for rows with keys and stream rows of their own (ForwardArgs::
  // row_keys): row i of the group draws row qs[i] of keys[i].  Lanes past nrows repeat
  // the last row (finite noise, never written out).
  const T* fill_columns(const PhiloxKey* keys, const uint64_t* qs, int64_t nrows, int64_t len,
                        Draw draw) {
    using philox::VU32;
    VU32 q_lo, q_hi, k0, k1;
    for (int j = 0; j < philox::kBlockLanes; ++j) {
      const int64_t i = std::min<int64_t>(j % kW<T>, nrows - 1);
      q_lo[j] = static_cast<uint32_t>(qs[i]);
      q_hi[j] = static_cast<uint32_t>(qs[i] >> 32);
      k0[j] = keys[i].k0;
      k1[j] = keys[i].k1;
    }
    fill_lanes(q_lo, q_hi, LaneKeys{k0, k1}, len, draw);
    return cols;
  }

  alignas(64) T cols[kShortMax * kW<T>];

 private:
  struct LaneKeys {
    philox::VU32 k0, k1;
  };
  void fill_lanes(PhiloxKey key, uint64_t first_row, int64_t r0, int64_t len, Draw draw) {
    using philox::VU32;
    VU32 row;
    for (int j = 0; j < philox::kBlockLanes; ++j) row[j] = static_cast<uint32_t>(j % kW<T>);
    const uint64_t q0 = first_row + static_cast<uint64_t>(r0);
    const VU32 q_lo = row + static_cast<uint32_t>(q0);
    const VU32 q_hi = (VU32{} + static_cast<uint32_t>(q0 >> 32)) - (VU32)(q_lo < row);
    fill_lanes(q_lo, q_hi, philox::LaneBlocks(key, q_lo, q_hi), len, draw);
  }
  // One key for every lane: its round keys and the lanes' constant rounds computed once
  // (philox::LaneBlocks; c1 .. c3 are the counter's 0, q_lo, q_hi, which it holds).
  static GS_INLINE void block(philox::VU32& c0, philox::VU32& c1, philox::VU32& c2,
                              philox::VU32& c3, const philox::LaneBlocks& blocks) {
    blocks.block(c0, c1, c2, c3);
  }
  static GS_INLINE void block(philox::VU32& c0, philox::VU32& c1, philox::VU32& c2,
                              philox::VU32& c3, const LaneKeys& key) {
    philox::block_lanes(c0, c1, c2, c3, key.k0, key.k1);
  }
  // Lane j: row j % W (stream row q_lo/q_hi[j], key of lane j); float64 computes two
  // blocks of each row per step (lanes j >= W: the second).
  template <class Key>
  GS_INLINE void fill_lanes(philox::VU32 q_lo, philox::VU32 q_hi, const Key& key, int64_t len,
                            Draw draw) {
    using philox::VU32;
    constexpr int W = kW<T>;
    constexpr int BL = philox::kBlockLanes;
    static_assert(W * words_per_element<T>() == BL, "one row per lane (float64: two lanes)");
    VU32 second;
    for (int j = 0; j < BL; ++j) second[j] = static_cast<uint32_t>(j / W);
    for (int64_t c = 0; c < len; c += 4) {
      const uint32_t b = static_cast<uint32_t>(c / 4 * words_per_element<T>());  // first block
      VU32 c0 = second + b, c1 = VU32{}, c2 = q_lo, c3 = q_hi;
      block(c0, c1, c2, c3, key);
      if constexpr (sizeof(T) == 4) {
        put(c, c0, len, draw);
        put(c + 1, c1, len, draw);
        put(c + 2, c2, len, draw);
        put(c + 3, c3, len, draw);
      } else {  // element c: words 0, 1 of the first block; c + 2: of the second
        put(c, zip<false>(c0, c1), len, draw);
        put(c + 1, zip<false>(c2, c3), len, draw);
        put(c + 2, zip<true>(c0, c1), len, draw);
        put(c + 3, zip<true>(c2, c3), len, draw);
      }
    }
  }

  using U = lanes::UInt<Vec<T>>;
  GS_INLINE void put(int64_t c, U bits, int64_t len, Draw draw) {
    using V = Vec<T>;
    if (c < len)
      lanes::store(cols + c * kW<T>, draw == Draw::exponential ? bits_to_exponential<V>(bits)
                                     : draw == Draw::logistic  ? bits_to_logistic<V>(bits)
                                                               : bits_to_gumbel<V>(bits));
  }
  // float64: the 64-bit elements of lanes 0 .. W - 1 (hi: W .. 2W - 1) of a and b, a the
  // low words.
  template <bool hi>
  GS_INLINE U zip(philox::VU32 a, philox::VU32 b) {
    philox::VU32 r;
#ifdef GS_HAVE_SHUFFLEVECTOR
#if defined(__AVX512F__)
    r = hi ? __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15,
                                     31)
           : __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
#elif defined(__AVX2__)
    r = hi ? __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
           : __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
#else
    r = hi ? __builtin_shufflevector(a, b, 2, 6, 3, 7) : __builtin_shufflevector(a, b, 0, 4, 1, 5);
#endif
#else
    constexpr int W = kW<T>;
    for (int i = 0; i < W; ++i) {
      r[2 * i] = a[i + (hi ? W : 0)];
      r[2 * i + 1] = b[i + (hi ? W : 0)];
    }
#endif
    return (U)r;
  }
};

// ----- moving a group's rows into columns and back ---------------------------------
// The kernels of a group work on columns: col[c * kW<T> + i] is element c of the group's
// row i.  A group's rows are one batch dimension apart when the RowSpec has at most one
// (make_rowspec merges the dimensions of a contiguous batch); then, on targets with
// vector gathers, a column is one gather (32-bit indices: the group must span less than
// 2^31 elements), and rows stored one after the other are written as one block.
#if defined(__AVX512F__) || defined(__AVX2__)
#define GS_HAVE_GATHER 1
typedef int32_t VI32Half __attribute__((vector_size(lanes::kNativeBytes / 2)));
template <class T>
using GatherIndex = std::conditional_t<sizeof(T) == 4, lanes::VI32, VI32Half>;
GS_INLINE lanes::VF32 gather(const float* p, lanes::VI32 idx) {
#if defined(__AVX512F__)
  return (lanes::VF32)_mm512_i32gather_ps((__m512i)idx, p, 4);
#else
  return (lanes::VF32)_mm256_i32gather_ps(p, (__m256i)idx, 4);
#endif
}
GS_INLINE lanes::VF64 gather(const double* p, VI32Half idx) {
#if defined(__AVX512F__)
  return (lanes::VF64)_mm512_i32gather_pd((__m256i)idx, p, 8);
#else
  return (lanes::VF64)_mm256_i32gather_pd(p, (__m128i)idx, 8);
#endif
}

// Whether the group's rows (rows r0 .. r0 + n - 1 of s) can be gathered.
template <class T>
GS_INLINE bool gatherable(const RowSpec& s, int64_t len) {
  if (s.nbatch > 1) return false;
  const int64_t rs = s.nbatch ? s.stride[0] : 0;
  const int64_t span = (rs < 0 ? -rs : rs) * (kW<T> - 1) + (s.step < 0 ? -s.step : s.step) * len;
  return span < (int64_t{1} << 31);
}
#endif

// Columns of rows r0 .. r0 + n - 1 (n >= 1) of x: col[c * kW + i], c < len; lanes
// i >= n hold `fill`.
template <class T>
GS_INLINE void load_columns(const T* x, const RowSpec& s, int64_t r0, int64_t n, int64_t len,
                            T fill, T* col) {
  constexpr int W = kW<T>;
#ifdef GS_HAVE_GATHER
  if (gatherable<T>(s, len)) {
    using V = Vec<T>;
    using Idx = GatherIndex<T>;
    const int64_t rs = s.nbatch ? s.stride[0] : 0;
    const T* base = x + r0 * rs;
    Idx idx;
    lanes::Int<V> live;
    for (int i = 0; i < W; ++i) {
      idx[i] = static_cast<int32_t>(std::min<int64_t>(i, n - 1) * rs);
      live[i] = i < n ? -1 : 0;
    }
    const V f = lanes::splat<V>(fill);
    const int32_t step = static_cast<int32_t>(s.step);
    for (int64_t c = 0; c < len; ++c) {
      lanes::store(col + c * W, lanes::select(live, gather(base, idx), f));
      idx += step;
    }
    return;
  }
#endif
  for (int i = 0; i < W; ++i) {
    const T* xr = i < n ? x + row_offset(s, r0 + i) : nullptr;
    for (int64_t c = 0; c < len; ++c) col[c * W + i] = xr ? xr[c * s.step] : fill;
  }
}

// A per-row value of rows r0 .. r0 + n - 1 in lanes: lane i < n holds p[(r0 + i) * step]
// (step 0: one value for all rows), the other lanes `rest`; every lane `rest` where p is
// null (one value for the call).
template <class T>
GS_INLINE Vec<T> row_lanes(const T* p, int64_t step, int64_t r0, int64_t n, T rest) {
  Vec<T> v = lanes::splat<Vec<T>>(rest);
  if (p)
    for (int64_t i = 0; i < n; ++i) v[i] = p[(r0 + i) * step];
  return v;
}

// Rows r0 .. r0 + n - 1 of y from columns (as load_columns lays them out).
template <class T>
GS_INLINE void store_columns(const T* col, T* y, const RowSpec& s, int64_t r0, int64_t n,
                             int64_t len) {
  constexpr int W = kW<T>;
#if defined(GS_HAVE_GATHER) && defined(GS_HAVE_PARTIAL)
  if (s.step == 1 && (s.nbatch == 0 || (s.nbatch == 1 && s.stride[0] == len))) {
    // The rows are one block of n * len elements: vector k of the block is element
    // t = k W + j (row t / len, column t % len) of col, gathered.
    using V = Vec<T>;
    using Idx = GatherIndex<T>;
    const int32_t l32 = static_cast<int32_t>(len);
    Idx row, c;
    for (int j = 0; j < W; ++j) c[j] = j;
    // j / len as a multiply and shift: exact, as j * (ceil(2^16 / len) * len - 2^16) <
    // 16 * 32 < 2^16
    row = (c * ((65536 + l32 - 1) / l32)) >> 16;
    c -= row * l32;
    const int32_t drow = W / l32, dc = W % l32;
    T* out = y + (s.nbatch ? r0 * s.stride[0] : 0);
    const int64_t total = n * len;
    int64_t t = 0;
    for (; t < total; t += W) {
      const V v = gather(col, c * W + row);
      if (t + W <= total)
        lanes::store(out + t, v);
      else
        lanes::store_first(out + t, v, total - t);
      c += dc;
      row += drow;
      const Idx wrap = c >= l32;
      c -= wrap & l32;
      row -= wrap;  // wrap is -1 where the column wrapped
    }
    return;
  }
#endif
  for (int i = 0; i < n; ++i) {
    T* yr = y + row_offset(s, r0 + i);
    for (int64_t c = 0; c < len; ++c) yr[c * s.step] = col[c * W + i];
  }
}

// noisy_logits on a group's columns (x and the Gumbel noise g laid out as load_columns
// and ShortNoise::fill_columns lay them out): v[c] = x + g, and per lane the max, its
// first index and whether the row has a sample (RowStats::defined: no NaN, a finite
// max).
template <class T>
struct NoisyColumns {
  Vec<T> max;
  lanes::Int<Vec<T>> at, defined;
};
template <class T>
GS_INLINE NoisyColumns<T> noisy_columns(const T* x, const T* g, int64_t len, Vec<T>* v) {
  using V = Vec<T>;
  using I = lanes::Int<V>;
  constexpr T inf = std::numeric_limits<T>::infinity();
  NoisyColumns<T> s{lanes::splat<V>(-inf), I{}, I{}};
  I nan{}, col{};
  for (int64_t c = 0; c < len; ++c, col += 1) {
    v[c] = lanes::load<V>(x + c * kW<T>) + lanes::load<V>(g + c * kW<T>);
    const I greater = v[c] > s.max;
    s.max = lanes::select(greater, v[c], s.max);
    s.at = greater ? col : s.at;
    nan |= v[c] != v[c];
  }
  s.defined = ~nan & (s.max > -inf) & (s.max < inf);
  return s;
}

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
