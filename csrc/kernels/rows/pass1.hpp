// Per-target row machinery, part 2: the random words and noise of a chunk, and pass 1
// of the samplers: v = x + g with its max, first argmax and NaN flag (RowStats).
#pragma once

#include "rows/common.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// Random words of the chunk: at least n * words_per_element words, in whole 16-block
// steps (64 words) when vectorised; `words` has room for kChunk elements' worth.
template <class T>
GS_INLINE void chunk_words(PhiloxKey key, uint64_t q, int64_t c0, int64_t n, uint32_t* words) {
  constexpr int wpe = words_per_element<T>();
  const uint64_t first = static_cast<uint64_t>(c0) * wpe;
#ifdef GS_HAVE_VECTOR_EXT
  constexpr int per_step = 4 * philox::kBlockLanes;
  philox::row_words_lanes(key, q, first, (n * wpe + per_step - 1) / per_step, words);
#else
  philox::row_words(key, q, first, n * wpe, words);
#endif
}

#ifdef GS_HAVE_VECTOR_EXT
// The same words from the row's precomputed blocks (see philox::RowBlocks).
template <class T>
GS_INLINE void chunk_words(const philox::RowBlocks& blocks, int64_t c0, int64_t n,
                           uint32_t* words) {
  constexpr int wpe = words_per_element<T>();
  constexpr int per_step = 4 * philox::kBlockLanes;
  blocks.words(static_cast<uint64_t>(c0) * wpe, (n * wpe + per_step - 1) / per_step, words);
}
#endif

// The noise of one element's bits (lanes V or a scalar) of the given kind.
template <class V, class B>
GS_INLINE V noise_of(B bits, Noise kind) {
  return kind == Noise::logistic ? bits_to_logistic<V>(bits) : bits_to_gumbel<V>(bits);
}

// One chunk of noise: g[i] for elements c0 .. c0 + n - 1 of absolute row q (vectorised:
// g is filled up to n rounded up to the vector width; the extra lanes are noise of
// later elements).
template <class T>
GS_INLINE void noise_chunk(PhiloxKey key, uint64_t q, int64_t c0, int64_t n, uint32_t* words, T* g,
                           Noise kind = Noise::gumbel) {
  chunk_words<T>(key, q, c0, n, words);
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  using U = lanes::UInt<V>;
  if (kind == Noise::logistic) {
    for (int64_t i = 0; i < n; i += kW<T>)
      lanes::store(g + i,
                   bits_to_logistic<V>(lanes::load_bits<U>(words + i * words_per_element<T>())));
    return;
  }
  for (int64_t i = 0; i < n; i += kW<T>) {
    const U b = lanes::load_bits<U>(words + i * words_per_element<T>());
    lanes::store(g + i, bits_to_gumbel<V>(b));
  }
#else
  for (int64_t i = 0; i < n; ++i) g[i] = noise_of<T>(element_bits(words, i, T()), kind);
#endif
}

// What pass 1 learns about v = x + g: its maximum, the first index holding it, and
// whether any element is NaN.
template <class T>
struct RowStats {
  T max = -std::numeric_limits<T>::infinity();
  int64_t argmax = 0;
  bool nan = false;
  // A row with a NaN, all -inf or a +inf has no defined sample: it becomes NaN.
  bool defined() const { return !nan && std::isfinite(max); }
};

// The stats of a row from those of its consecutive segments.
template <class T>
RowStats<T> combine(const RowStats<T>* seg, int64_t nseg) {
  RowStats<T> st;
  for (int64_t k = 0; k < nseg; ++k) {
    st.nan = st.nan || seg[k].nan;
    if (seg[k].max > st.max) {  // strict: the earliest segment holding the max wins
      st.max = seg[k].max;
      st.argmax = seg[k].argmax;
    }
  }
  return st;
}

// Chunk buffers of one row pass, aligned for vector loads; padded by one vector.
template <class T>
struct ChunkBuffers {
  alignas(64) uint32_t words[kChunk * words_per_element<T>()];
  alignas(64) T g[kChunk];
  alignas(64) T x[kChunk + kLanes];
  alignas(64) T v[kChunk + kLanes];
};

// The n elements of a row from c0 on, contiguous: read in place when the row is
// contiguous and n is a whole number of 16-element steps, else gathered into buf
// (kChunk + kLanes elements) and padded with -inf to the next whole step.
template <class T>
const T* chunk_x(const T* x, int64_t step, int64_t c0, int64_t n, T* buf) {
  const T* xc = x + c0 * step;
  if (step == 1 && n % kLanes == 0) return xc;
  for (int64_t i = 0; i < n; ++i) buf[i] = xc[i * step];
  for (int64_t i = n; i < n + kLanes; ++i) buf[i] = -std::numeric_limits<T>::infinity();
  return buf;
}

#ifdef GS_HAVE_VECTOR_EXT
// The running stats of pass 1, per lane: the max, and with kFull the first element index
// holding it and the NaN flag.
template <class T, bool kFull>
struct LaneStats {
  using V = Vec<T>;
  using I = lanes::Int<V>;
  V vmax = lanes::splat<V>(-std::numeric_limits<T>::infinity());
  I vidx{};
  lanes::NanTest<V> vnan;
  I iota;
  LaneStats() {
    for (int j = 0; j < kW<T>; ++j) iota[j] = j;
  }
  // v holds elements c .. c + W - 1.
  GS_INLINE void add(V v, int64_t c) {
    if constexpr (kFull) {
      const I greater = v > vmax;
      vmax = lanes::select(greater, v, vmax);
      vidx = greater ? (iota + static_cast<int>(c)) : vidx;
      vnan.add(v);
    } else {
      vmax = lanes::select(v > vmax, v, vmax);  // one max instruction
    }
  }
  // Combine the lanes: the max, then the lowest element index among lanes holding it.
  RowStats<T> result(int64_t begin, int64_t len) const {
    RowStats<T> st;
    for (int j = 0; j < kW<T>; ++j)
      if (vmax[j] > st.max) st.max = vmax[j];
    st.argmax = begin;  // all -inf: undefined row, any index
    if constexpr (kFull) {
      int64_t first = len;
      for (int j = 0; j < kW<T>; ++j)
        if (vmax[j] == st.max) first = std::min<int64_t>(first, vidx[j]);
      if (first != len) st.argmax = first;
      st.nan = vnan.any();
    }
    return st;
  }
};

// Pass 1 on the n elements from c0 on, whose words are in buf.words: v = x + g into
// v_out + c0 (when non-null), and into the stats.
template <class T, bool kFull, class Pf>
GS_INLINE void noisy_chunk(const T* x, int64_t step, int64_t c0, int64_t n, ChunkBuffers<T>& buf,
                           T* v_out, LaneStats<T, kFull>& st, const Pf& pf) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  // The exponential variates of the chunk first, then their logs: two short loops
  // overlap better than one long dependency chain per vector.  Two vectors per step,
  // with one prefetch per cache line of 64 bytes (AVX2 float32: one for both vectors).
  // The words are whole Philox steps of at least 2 W elements, so the vectors past n
  // read words of the row (noise nobody uses).
  static_assert(kChunk % (2 * W) == 0 && 4 * philox::kBlockLanes >= 2 * W * words_per_element<T>(),
                "a chunk and a Philox step are whole steps of two vectors");
  auto exponential = [&](int64_t i) {
    lanes::store(buf.g + i, bits_to_exponential<V>(lanes::load_bits<lanes::UInt<V>>(
                                buf.words + i * words_per_element<T>())));
  };
  for (int64_t i = 0; i < n; i += 2 * W) {
    pf.at(c0 + i);
    if constexpr (W * sizeof(T) >= 64) pf.at(c0 + i + W);
    exponential(i);
    exponential(i + W);
  }
  // g = -log(E), so x + g = x - log(E) exactly.
  auto noisy = [&](V xv, int64_t i) { return xv - vmath::log(lanes::load<V>(buf.g + i)); };
#ifdef GS_HAVE_PARTIAL
  if (step == 1) {  // in place, the last partial vector masked
    const T* xc = x + c0;
    T* vc = v_out ? v_out + c0 : buf.v;
    const int64_t full = n - n % W;
#pragma GCC unroll 2
    for (int64_t i = 0; i < full; i += W) {
      const V v = noisy(lanes::load<V>(xc + i), i);
      lanes::store(vc + i, v);
      st.add(v, c0 + i);
    }
    if (full < n) {
      // lanes past the row: x = -inf, so v = -inf changes neither max, argmax nor NaN
      const V xv = lanes::load_first(xc + full, n - full, -std::numeric_limits<T>::infinity());
      const V v = noisy(xv, full);
      lanes::store_first(vc + full, v, n - full);
      st.add(v, c0 + full);
    }
    return;
  }
#endif
  const T* xc = chunk_x(x, step, c0, n, buf.x);
  for (int64_t i = 0; i < n; i += W) {
    // padded lanes are -inf + g = -inf: they change neither max, argmax nor NaN flag
    const V v = noisy(lanes::load<V>(xc + i), i);
    lanes::store(buf.v + i, v);
    st.add(v, c0 + i);
  }
  if (v_out) std::memcpy(v_out + c0, buf.v, static_cast<size_t>(n) * sizeof(T));
}
#endif

// Pass 1 over elements [begin, end) of a row (begin a multiple of kChunk): v = x + g,
// with its max, first argmax and NaN flag.  x and v_out point at the row's element 0; v
// is written to v_out (contiguous) when it is non-null.  kFull = false finds the max
// alone (argmax = begin, nan = false), for the soft sample of a row with 1/tau > 0: a
// NaN in v makes the row's sum NaN (softmax_from_noisy), so it needs no flag.  pf:
// what to prefetch meanwhile (see RowPrefetch; vectorised targets only).
template <class T, bool kFull = true, class Pf = NoPrefetch>
RowStats<T> noisy_logits(const T* x, int64_t step, int64_t begin, int64_t end, PhiloxKey key,
                         uint64_t q, T* v_out, const Pf& pf = {}) {
  ChunkBuffers<T> buf;
#ifdef GS_HAVE_VECTOR_EXT
  const philox::RowBlocks blocks(key, q);
  LaneStats<T, kFull> lst;
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    chunk_words<T>(blocks, c0, n, buf.words);
    noisy_chunk(x, step, c0, n, buf, v_out, lst, pf);
  }
  return lst.result(begin, end);
#else
  (void)pf;
  RowStats<T> st;
  st.argmax = begin;
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    noise_chunk(key, q, c0, n, buf.words, buf.g);
    T* v = v_out ? v_out + c0 : buf.v;
    for (int64_t i = 0; i < n; ++i) v[i] = x[(c0 + i) * step] + buf.g[i];
    for (int64_t i = 0; i < n; ++i) {
      st.nan = st.nan || (v[i] != v[i]);
      if (v[i] > st.max) {  // strict: ties keep the lowest index
        st.max = v[i];
        st.argmax = c0 + i;
      }
    }
  }
  return st;
#endif
}

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
