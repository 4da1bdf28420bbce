// Per-target row machinery, part 3: passes 2 and 3 of the soft sample (exp and sum in
// the fixed order, scale), the tau -> infinity and tau = 1 paths.
#pragma once

#include "rows/pass1.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// tau -> infinity.  When 1/tau rounds to 0, (v - max) * (1/tau) is NaN at v = -inf
// (-inf * 0), and the row would be NaN.  The limit is the uniform distribution over the
// finite entries: a defined row (max finite, no NaN, no +inf) calls this on its v
// before pass 2 and then uses 1/tau = 1, so (v - max) * 1 is exactly 0 (e = 1, log
// y = -log S) at every finite entry and -inf (e = 0, log y = -inf) at every -inf entry:
// the bits that 1/tau tiny but nonzero gives where (v - max) / tau rounds to a zero or
// subnormal, with S the count of finite entries summed in the usual order.  Only rows
// with 1/tau == 0 pay for this pass.
template <class T>
void flatten_row(T* v, int64_t begin, int64_t end, T max) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t c = begin; c < end; ++c) v[c] = v[c] == ninf ? ninf : max;
}

// The 1/tau that pass 2 of a defined row uses: 1 after flatten_row where 1/tau is 0
// (tau -> infinity; v has no NaN there), else 1/tau itself.
template <class T>
T pass2_inv_tau(T* v, int64_t len, T max, T inv_tau) {
  if (inv_tau != T(0)) return inv_tau;
  flatten_row(v, 0, len, max);
  return T(1);
}

// Pass 2 on v[begin, end) in place (contiguous): e = exp((v - max) / tau) (stored when
// kStore); returns the segment's sum, element c in partial sum (c - begin) % 16.  Sets
// *tiny (when given) if an e came from exp's path for results below the smallest normal
// (vmath.hpp, GS_EXACT_TINY), which scale then takes too.
template <bool kStore = true, class T>
T exp_sum(T* v, int64_t begin, int64_t end, T max, T inv_tau, bool* tiny = nullptr) {
  int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  bool small = false;  // (a local: kept in a register in the loops)
  V vacc[kSub<T>] = {};
  for (; c + kLanes <= end; c += kLanes)
    for (int k = 0; k < kSub<T>; ++k) {
      T* p = v + c + k * kW<T>;
      const V e = vmath::exp_scaled_nonpos<0>((lanes::load<V>(p) - max) * inv_tau, &small);
      if (kStore) lanes::store(p, e);
      vacc[k] = vacc[k] + e;
    }
  if (c < end) {
    // The last, partial step of 16, its lanes past the row read as -inf: exp(-inf) = +0
    // adds nothing to a partial sum (which is +0 or positive), so the sums are those of
    // the scalar loop below, element for element.
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    const int64_t rem = end - c;
#ifdef GS_HAVE_PARTIAL
    for (int k = 0; k < kSub<T>; ++k) {
      T* p = v + c + k * kW<T>;
      const int64_t nk = std::min<int64_t>(rem - k * kW<T>, kW<T>);
      if (nk <= 0) break;
      const V x = nk == kW<T> ? lanes::load<V>(p) : lanes::load_first(p, nk, ninf);
      const V e = vmath::exp_scaled_nonpos<0>((x - max) * inv_tau, &small);
      if (kStore) nk == kW<T> ? lanes::store(p, e) : lanes::store_first(p, e, nk);
      vacc[k] = vacc[k] + e;
    }
#else
    alignas(64) T tail[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) tail[j] = j < rem ? v[c + j] : ninf;
    for (int k = 0; k < kSub<T>; ++k) {
      T* p = tail + k * kW<T>;
      const V e = vmath::exp_scaled_nonpos<0>((lanes::load<V>(p) - max) * inv_tau, &small);
      if (kStore) lanes::store(p, e);
      vacc[k] = vacc[k] + e;
    }
    if (kStore) std::memcpy(v + c, tail, static_cast<size_t>(rem) * sizeof(T));
#endif
    c = end;
  }
  T acc[kLanes];
  spill<T>(vacc, acc);
  if (tiny && small) *tiny = true;
#else
  (void)tiny;
  T acc[kLanes] = {};
  for (; c + kLanes <= end; c += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T e = vmath::exp_scaled_nonpos<0>((v[c + j] - max) * inv_tau);
      if (kStore) v[c + j] = e;
      acc[j] = acc[j] + e;
    }
#endif
  for (int j = 0; c + j < end; ++j) {
    const T e = vmath::exp_scaled_nonpos<0>((v[c + j] - max) * inv_tau);
    if (kStore) v[c + j] = e;
    acc[j] = acc[j] + e;
  }
  return tree_sum(acc);
}

// y = e * s on [begin, end) (y may be v itself, step 1), for float32 e >= 0 some of which
// are below the smallest normal (exp_sum's tiny flag) and 0 < s <= 1: the lanes whose
// product may be below the smallest normal (e < 2^-125 / s; comparisons take no assist)
// come from vmath::mul_exact (the same bits, without the assist of a multiplication
// with a subnormal operand or result).
template <class T>
GS_COLD void scale_with_tiny(const T* v, int64_t begin, int64_t end, T s, T* y, int64_t ystep) {
  int64_t i = begin;
#if defined(GS_EXACT_TINY)
  if constexpr (sizeof(T) == 4) {
    using V = Vec<T>;
    const T below = T(2) * std::numeric_limits<T>::min() / s;
    for (; i + kW<T> <= end; i += kW<T>) {
      const V r = vmath::scale_small(lanes::load<V>(v + i), s, below);
      if (ystep == 1)
        lanes::store(y + i, r);
      else
        for (int j = 0; j < kW<T>; ++j) y[(i + j) * ystep] = r[j];
    }
  }
#endif
  for (; i < end; ++i) y[i * ystep] = v[i] * s;
}

// Pass 3 on [begin, end): y = e * s, or y = e / s when kDivide (y may be v itself, step 1).
// tiny: exp_sum reported e below the smallest normal (then 0 < s <= 1, not kDivide).
template <bool kDivide = false, class T>
void scale(const T* v, int64_t begin, int64_t end, T s, T* y, int64_t ystep, bool tiny = false) {
  if (!kDivide && tiny) return scale_with_tiny(v, begin, end, s, y, ystep);
  int64_t i = begin;
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1)
#pragma GCC unroll 4
    for (; i + kW<T> <= end; i += kW<T>) {
      const auto e = lanes::load<Vec<T>>(v + i);
      lanes::store(y + i, kDivide ? e / s : e * s);
    }
#endif
  for (; i < end; ++i) y[i * ystep] = kDivide ? v[i] / s : v[i] * s;
}

// Pass 3 of the log-space sample on [begin, end): y = (v - max) / tau - lse, the same
// (v - max) / tau as exp_sum's.
template <class T>
void log_scale(const T* v, int64_t begin, int64_t end, T max, T inv_tau, T lse, T* y,
               int64_t ystep) {
  int64_t i = begin;
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1)
    for (; i + kW<T> <= end; i += kW<T>)
      lanes::store(y + i, (lanes::load<Vec<T>>(v + i) - max) * inv_tau - lse);
#endif
  for (; i < end; ++i) y[i * ystep] = (v[i] - max) * inv_tau - lse;
}

// Pass 2 of the soft sample of one row, in place on v (contiguous): e = exp((v - max) /
// tau), summed segment by segment; returns pass 3's factor s = 1 / sum (NaN: the row is
// NaN), *tiny as exp_sum's.  The row's max is finite.  Pass 3 is scale(v, .., s, ..).
template <class T>
T soft_scale(T* v, int64_t len, T max, T inv_tau, bool* tiny) {
  inv_tau = pass2_inv_tau(v, len, max, inv_tau);
  T sum = exp_sum(v, 0, std::min(len, kSegment), max, inv_tau, tiny);
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum = sum + exp_sum(v, b, std::min(len, b + kSegment), max, inv_tau, tiny);
  return T(1) / sum;
}

// Passes 2 and 3 of the soft sample (or its log) of one row, in place on v
// (contiguous), written to y (y may be v itself, step 1).  The row's max is finite; a
// NaN in v (pass 1 without the NaN flag, 1/tau > 0) makes the sum NaN and the row NaN.
template <class T>
void softmax_from_noisy(T* v, int64_t len, T max, T inv_tau, bool log, T* y, int64_t ystep) {
  if (log) {
    inv_tau = pass2_inv_tau(v, len, max, inv_tau);
    T sum = exp_sum<false>(v, 0, std::min(len, kSegment), max, inv_tau);
    for (int64_t b = kSegment; b < len; b += kSegment)
      sum = sum + exp_sum<false>(v, b, std::min(len, b + kSegment), max, inv_tau);
    if (sum != sum) return fill_nan(y, ystep, len);
    return log_scale(v, 0, len, max, inv_tau, vmath::log(sum), y, ystep);
  }
  bool tiny = false;
  const T s = soft_scale(v, len, max, inv_tau, &tiny);
  if (s != s) return fill_nan(y, ystep, len);
  scale(v, 0, len, s, y, ystep, tiny);
}

// ----- tau = 1 --------------------------------------------------------------------
// When 1/tau is exactly 1 the soft sample skips the second log and the maximum of x + g,
// since e^(x + g) = e^x / E:
//   y_c = a_c / sum(a),   a_c = exp(x_c - max(x)) * 2^N / E_c,   E_c = -log(U_c),
// with N = kUnitScale (62 for float32, 512 for float64), applied inside exp_scaled so
// nothing rounds twice.  Bounds (1/E <= 2^33 resp. 2^65, E <= 23 resp. 46, rows of at
// most 2^31 - 1 elements): every a_c and the sum stay finite, and an a_c that underflows
// belongs to a y_c below half the smallest subnormal, so tiny y_c keep their relative
// accuracy as in the general path.  y_c = a_c / sum is a division, so a row with one
// nonzero a_c gives exactly 1.  Sums: the same 16 partial sums and segments; rows with
// NaN, +inf or only -inf give a NaN sum and a NaN row.
template <class T>
constexpr int kUnitScale = sizeof(T) == 4 ? 62 : 512;

// max of x over elements [begin, end) of a row (NaN ignored; exact in any order).
template <class T>
T row_max(const T* x, int64_t step, int64_t begin, int64_t end) {
  T m = -std::numeric_limits<T>::infinity();
  int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
  if (step == 1) {
    using V = Vec<T>;
    V vm = lanes::splat<V>(m);
    for (; c + kW<T> <= end; c += kW<T>) {
      const V v = lanes::load<V>(x + c);
      vm = lanes::select(v > vm, v, vm);
    }
    for (int j = 0; j < kW<T>; ++j)
      if (vm[j] > m) m = vm[j];
  }
#endif
  for (; c < end; ++c)
    if (x[c * step] > m) m = x[c * step];
  return m;
}

// a_c for elements [begin, end) of row q (begin a multiple of kChunk) into a (the row's
// element 0, contiguous); returns the segment's sum, element c in partial (c - begin) % 16.
// pf: what to prefetch meanwhile (see RowPrefetch).
template <class T, class Pf = NoPrefetch>
T unit_exp_sum(const T* x, int64_t step, int64_t begin, int64_t end, T xmax, PhiloxKey key,
               uint64_t q, T* a, const Pf& pf = {}) {
  constexpr int N = kUnitScale<T>;
  ChunkBuffers<T> buf;
#ifdef GS_HAVE_VECTOR_EXT
  constexpr int wpe = words_per_element<T>();
  using V = Vec<T>;
  using U = lanes::UInt<V>;
  constexpr int W = kW<T>;
  V vacc[kSub<T>] = {};
  const philox::RowBlocks blocks(key, q);
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    chunk_words<T>(blocks, c0, n, buf.words);
    auto term = [&](V xv, int64_t o) {
      const V E = bits_to_exponential<V>(lanes::load_bits<U>(buf.words + o * wpe));
      return vmath::exp_scaled_nonpos<N>(xv - xmax) / E;
    };
#ifdef GS_HAVE_PARTIAL
    if (step == 1) {  // in place, the last partial vectors masked
      // padded lanes: exp(-inf) = +0 leaves the partial sums as the scalar loop leaves them
      constexpr T ninf = -std::numeric_limits<T>::infinity();
      const T* xc = x + c0;
      T* ac = a + c0;
      const int64_t full = n - n % kLanes;
      for (int64_t i = 0; i < full; i += kLanes)
        for (int k = 0; k < kSub<T>; ++k) {
          const int64_t o = i + k * W;
          if ((k * W * sizeof(T)) % 64 == 0) pf.at(c0 + o);  // once per cache line
          const V e = term(lanes::load<V>(xc + o), o);
          lanes::store(ac + o, e);
          vacc[k] = vacc[k] + e;
        }
      for (int k = 0; k < kSub<T> && full + k * W < n; ++k) {
        const int64_t o = full + k * W;
        const int64_t nk = std::min<int64_t>(n - o, W);
        const V e = term(lanes::load_first(xc + o, nk, ninf), o);
        lanes::store_first(ac + o, e, nk);
        vacc[k] = vacc[k] + e;
      }
      continue;
    }
#endif
    // padded lanes: exp(-inf) = +0 leaves the partial sums as the scalar loop leaves them
    const T* xc = chunk_x(x, step, c0, n, buf.x);
    for (int64_t i = 0; i < n; i += kLanes)
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = i + k * W;
        if ((k * W * sizeof(T)) % 64 == 0) pf.at(c0 + o);
        const V e = term(lanes::load<V>(xc + o), o);
        lanes::store(buf.v + o, e);
        vacc[k] = vacc[k] + e;
      }
    std::memcpy(a + c0, buf.v, static_cast<size_t>(n) * sizeof(T));
  }
  T acc[kLanes];
  spill<T>(vacc, acc);
#else
  (void)pf;
  T acc[kLanes] = {};
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    chunk_words<T>(key, q, c0, n, buf.words);
    for (int64_t i = 0; i < n; ++i) {
      const T E = bits_to_exponential<T>(element_bits(buf.words, i, T()));
      const T e = vmath::exp_scaled_nonpos<N>(x[(c0 + i) * step] - xmax) / E;
      a[c0 + i] = e;
      acc[(c0 + i - begin) % kLanes] = acc[(c0 + i - begin) % kLanes] + e;
    }
  }
#endif
  return tree_sum(acc);
}

// The a_c of one row of the tau = 1 soft sample into v (contiguous), and their sum (NaN:
// the row is NaN); pass 3 is scale<true>(v, 0, len, sum, ...).
template <class T, class Pf = NoPrefetch>
T unit_sum(const T* x, int64_t step, int64_t len, PhiloxKey key, uint64_t q, T* v,
           const Pf& pf = {}) {
  const T xmax = row_max(x, step, 0, len);
  T sum = unit_exp_sum(x, step, 0, std::min(len, kSegment), xmax, key, q, v, pf);
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum = sum + unit_exp_sum(x, step, b, std::min(len, b + kSegment), xmax, key, q, v, pf);
  return sum;
}

// The tau = 1 soft sample of one row: a in v (contiguous), then y (y may be v itself).
// pf: what to prefetch meanwhile (see RowPrefetch).
template <class T, class Pf = NoPrefetch>
void unit_softmax_row(const T* x, int64_t step, int64_t len, PhiloxKey key, uint64_t q, T* v, T* y,
                      int64_t ystep, const Pf& pf = {}) {
  const T sum = unit_sum(x, step, len, key, q, v, pf);
  if (sum != sum) return fill_nan(y, ystep, len);
  scale<true>(v, 0, len, sum, y, ystep);
}

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
