// The k steps of a row of relaxed_top_k (ops/relaxed_top_k.cpp), shared by its forward
// and its backward: the padded row buffers, log(1 - a), the exp and update passes and
// relaxed_steps itself.  The formulas and their stable form are in docs/contract.md
// ("Relaxed top-k").
#pragma once

#include "rows/pass1.hpp"
#include "rows/short_rows.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// The rows live in per-thread buffers padded to whole 16-element steps: r with -inf,
// which gives e = 0, a = 0, log(1 - a) = 0 and is never the maximum, so every pass runs
// over whole steps and adds exactly what a scalar loop over the row adds (+0 leaves a
// partial sum as it is); grad_y with 0.
inline int64_t padded(int64_t len) { return (len + kLanes - 1) / kLanes * kLanes; }

// a * b for scratch sizes (a, b >= 0), saturating: a size that does not fit in int64_t
// asks for more than any machine has, and the allocation throws std::bad_alloc (a
// MemoryError, with the call's rows given back) instead of wrapping to a small buffer.
inline int64_t scratch_size(int64_t a, int64_t b) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  return b != 0 && a > kMax / b ? kMax : a * b;
}

template <class T>
constexpr T kNinf = -std::numeric_limits<T>::infinity();

// log(1 - a) for a in [0, 1/2] (slightly above is harmless), within the error of log:
// log1p(-a) on the reduced range for a <= 1 - sqrt(1/2), else -ln 2 + log1p(1 - 2a)
// (1 - 2a is exact by Sterbenz's lemma), one evaluation of the series either way.
// For 0 < a < 2^-30 (float32) or 2^-60 (float64) the series gives exactly -a (2 + f
// rounds to 2, and the correction, about a^2 / 2, is below half an ulp of a), which is
// returned directly: the series' squares would underflow there, and a multiplication
// with a subnormal operand or result takes a microcode assist on many x86 cores (an a of
// a small tau's softmax is often that small).  The same bits either way.
template <class V>
GS_INLINE V log1m(V a) {
  using S = typename lanes::Traits<V>::Scalar;
  constexpr S kTiny = sizeof(S) == 4 ? S(0x1p-30) : S(0x1p-60);
  const auto tiny = (a > S(0)) & (a < kTiny);
  const V a0 = lanes::select(tiny, lanes::splat<V>(S(0)), a);
  const auto big = a0 > S(0.29289321881345254);  // 1 - sqrt(1/2)
  const V e = lanes::select(big, lanes::splat<V>(S(-1)), lanes::splat<V>(S(0)));
  const V f = lanes::select(big, S(1) - (a0 + a0), -a0);
  return lanes::select(tiny, -a, vmath::log_combine(e, f));
}

// log(1 - a_I) of a step's argmax I, where a_I = 1/S and 1 - a_I = O/S, O the sum of the
// other e, summed on its own (S = 1 + O): log1m(a_I) while a_I <= 1/2, else log(O/S),
// with O scaled by 2^64 when O/S is subnormal (vmath::log takes normal numbers); -inf
// when O = 0 (every other e underflowed: the category is taken with certainty).
template <class T>
T log_rest(T O, T S, T aI) {
  if (aI <= T(0.5)) return log1m(aI);
  if (O == T(0)) return kNinf<T>;
  const T q = O / S;
  if (q >= std::numeric_limits<T>::min()) return vmath::log(q);
  constexpr T k64ln2 = T(44.361419555836499802702855773323);  // 64 ln 2
  return (vmath::log(O * T(0x1p64)) - vmath::log(S)) - k64ln2;
}

// Pass 1 of a step on elements [b, end) of the padded row: e = exp((r - max) / tau)
// (kFlat: 1/tau = 0, the tau -> infinity limit: e = 1 at every finite r, as flatten_row
// does), stored; returns their sum, element c in partial sum (c - b) % 16.
template <bool kFlat, class T>
T exp_segment(const T* r, T* e, int64_t b, int64_t end, T max, T itau, bool* tiny) {
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  V vacc[kSub<T>] = {};
  bool small = false;  // an e below the smallest normal (vmath.hpp, GS_EXACT_TINY)
  for (int64_t c = b; c < end; c += kLanes)
    for (int s = 0; s < kSub<T>; ++s) {
      const V rv = lanes::load<V>(r + c + s * kW<T>);
      V ev;
      if constexpr (kFlat)
        ev = lanes::select(rv == kNinf<T>, lanes::splat<V>(T(0)), lanes::splat<V>(T(1)));
      else
        ev = vmath::exp_scaled_nonpos<0>((rv - max) * itau, &small);
      lanes::store(e + c + s * kW<T>, ev);
      vacc[s] = vacc[s] + ev;
    }
  T acc[kLanes];
  spill<T>(vacc, acc);
  if (small) *tiny = true;
#else
  (void)tiny;
  T acc[kLanes] = {};
  for (int64_t c = b; c < end; c += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T rv = r[c + j];
      const T ev =
          kFlat ? (rv == kNinf<T> ? T(0) : T(1)) : vmath::exp_scaled_nonpos<0>((rv - max) * itau);
      e[c + j] = ev;
      acc[j] = acc[j] + ev;
    }
#endif
  return tree_sum(acc);
}

// Pass 1 over the padded row [0, L): segment sums added in order, as every row sum.
// *tiny: set when an e is below the smallest normal (then the passes 2 take care).
template <class T>
T exp_pass(const T* r, T* e, int64_t L, T max, T itau, bool* tiny) {
  T sum = T(0);
  for (int64_t b = 0; b < L; b += kSegment) {
    const int64_t end = std::min(L, b + kSegment);
    sum = sum + (itau == T(0) ? exp_segment<true>(r, e, b, end, max, itau, tiny)
                              : exp_segment<false>(r, e, b, end, max, itau, tiny));
  }
  return sum;
}

// a = e * inv_sum of one vector, for a pass 2 after an exp pass that found e below the
// smallest normal: the lanes whose a may be below it come from vmath::mul_exact (the
// same bits, without the assists of subnormal operands).
#if defined(GS_EXACT_TINY)
struct TinyStep {
  float inv_sum, below;
  explicit TinyStep(float s) : inv_sum(s), below(2 * std::numeric_limits<float>::min() / s) {}
  GS_INLINE Vec<float> a(Vec<float> e) const { return vmath::scale_small(e, inv_sum, below); }
};
#endif

// The maximum of r and its first index.
template <class T>
struct Top {
  T max;
  int64_t idx;
};

// Pass 2 of a step that has a next one: a = e / S (as e * (1/S)) into dst (kStoreA) or
// added to dst (the sample), r += log(1 - a), and the maximum of the new r.
template <bool kStoreA, class T>
Top<T> update_pass(const T* e, T* dst, T* r, int64_t L, T inv_sum, bool tiny) {
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  LaneStats<T, true> st;
#if defined(GS_EXACT_TINY)
  if constexpr (sizeof(T) == 4)
    if (tiny) {
      const TinyStep t(inv_sum);
      for (int64_t c = 0; c < L; c += kW<T>) {
        const V a = t.a(lanes::load<V>(e + c));
        lanes::store(dst + c, kStoreA ? a : lanes::load<V>(dst + c) + a);
        const V rv = lanes::load<V>(r + c) + log1m(a);
        lanes::store(r + c, rv);
        st.add(rv, c);
      }
      const RowStats<T> rs = st.result(0, L);
      return Top<T>{rs.max, rs.argmax};
    }
#endif
  (void)tiny;
  for (int64_t c = 0; c < L; c += kW<T>) {
    const V a = lanes::load<V>(e + c) * inv_sum;
    lanes::store(dst + c, kStoreA ? a : lanes::load<V>(dst + c) + a);
    const V rv = lanes::load<V>(r + c) + log1m(a);
    lanes::store(r + c, rv);
    st.add(rv, c);
  }
  const RowStats<T> rs = st.result(0, L);
  return Top<T>{rs.max, rs.argmax};
#else
  (void)tiny;
  Top<T> top{kNinf<T>, 0};
  for (int64_t c = 0; c < L; ++c) {
    const T a = e[c] * inv_sum;
    dst[c] = kStoreA ? a : dst[c] + a;
    r[c] = r[c] + log1m(a);
    if (r[c] > top.max) top = Top<T>{r[c], c};
  }
  return top;
#endif
}

// Pass 2 of the last step: a = e / S into dst (kStoreA) or added to it.
template <bool kStoreA, class T>
void last_pass(const T* e, T* dst, int64_t L, T inv_sum, bool tiny) {
  int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
#if defined(GS_EXACT_TINY)
  if constexpr (sizeof(T) == 4)
    if (tiny) {
      const TinyStep t(inv_sum);
      for (; c < L; c += kW<T>) {
        const V a = t.a(lanes::load<V>(e + c));
        lanes::store(dst + c, kStoreA ? a : lanes::load<V>(dst + c) + a);
      }
    }
#endif
  (void)tiny;
  for (; c < L; c += kW<T>) {
    const V a = lanes::load<V>(e + c) * inv_sum;
    lanes::store(dst + c, kStoreA ? a : lanes::load<V>(dst + c) + a);
  }
#else
  (void)tiny;
#endif
  for (; c < L; ++c) dst[c] = kStoreA ? e[c] * inv_sum : dst[c] + e[c] * inv_sum;
}

// What the backward needs of a step: its argmax I and the sums O (of the other e) and
// S = 1 + O, so that 1 - a_I = O/S.
template <class T>
struct StepInfo {
  int64_t idx;
  T O, S;
};

// The k steps of one row, on r = x + g (padded; top: its maximum and first argmax), in
// place.  Each step's argmax I is set to -inf while the others are summed (its e = 1 is
// added back as S = 1 + O, and a_I = 1/S), then r_I += log_rest(O, S, a_I), the
// others r += log1m(a).  kStoreA: a_j into dst + j * L and the steps into info (the
// backward); else dst += a_j (the sample).  Returns the number of steps taken: fewer
// than k when every r is -inf (each category left was taken with certainty; the
// remaining steps would add nothing).
template <bool kStoreA, class T>
int64_t relaxed_steps(T* r, T* e, T* dst, int64_t L, int64_t k, T itau, Top<T> top,
                      StepInfo<T>* info) {
  for (int64_t j = 0; j < k; ++j) {
    if (top.max == kNinf<T>) return j;
    if (j > 0 && row_should_stop(L)) return j;  // Ctrl-C: a long row of k steps stops too
    const int64_t I = top.idx;
    const T rI = r[I];
    r[I] = kNinf<T>;
    bool tiny = false;
    const T O = exp_pass(r, e, L, top.max, itau, &tiny);
    const T S = O + T(1), inv_sum = T(1) / S;
    T* d = kStoreA ? dst + j * L : dst;
    if (kStoreA) info[j] = StepInfo<T>{I, O, S};
    if (j + 1 == k) {
      last_pass<kStoreA>(e, d, L, inv_sum, tiny);
      d[I] = kStoreA ? inv_sum : d[I] + inv_sum;
      return k;
    }
    Top<T> next = update_pass<kStoreA>(e, d, r, L, inv_sum, tiny);
    d[I] = kStoreA ? inv_sum : d[I] + inv_sum;
    r[I] = rI + log_rest(O, S, inv_sum);
    if (r[I] > next.max || (r[I] == next.max && I < next.idx)) next = Top<T>{r[I], I};
    top = next;
  }
  return k;
}

// v = x + g of row q into the padded buffer r (contiguous), padding -inf; pf: what to
// prefetch meanwhile (see RowPrefetch).
template <class T, class Pf = NoPrefetch>
RowStats<T> noisy_row(const T* x, int64_t step, int64_t len, PhiloxKey key, uint64_t q, T* r,
                      const Pf& pf = {}) {
  const RowStats<T> st = noisy_logits(x, step, 0, len, key, q, r, pf);
  for (int64_t c = len; c < padded(len); ++c) r[c] = kNinf<T>;
  return st;
}

// A padded row buffer to a strided row (NaN made canonical).
template <class T>
void write_row(const T* src, T* dst, int64_t step, int64_t len) {
  for (int64_t c = 0; c < len; ++c) dst[c * step] = src[c] == src[c] ? src[c] : kNaN<T>;
}

#ifdef GS_HAVE_VECTOR_EXT
// relaxed_steps on a group of short rows (rows/short_rows.hpp), one row per vector lane:
// its operations in its order, per lane (the exp, the sums, the updates, the argmax and
// log_rest; element c in partial sum c % 16, combined as tree_sum does; the row path's
// padding adds exact zeros and is left out; a lane whose r is all -inf stops, as
// relaxed_steps returns).  a = e * (1/S) directly: TinyStep computes the same bits
// without the assists of subnormal operands.
template <class T>
struct ShortSteps {
  using V = Vec<T>;
  using I = lanes::Int<V>;
  static constexpr int W = kW<T>;
  const int64_t len;
  V r[kShortMax];  // v = x + g, then the steps' r
  V max = lanes::splat<V>(kNinf<T>);
  I at{}, defined{};
  // per step j: the lanes that took it, their argmax I, O and S (see StepInfo)
  I live[kShortMax], idx[kShortMax];
  V O[kShortMax], S[kShortMax];

  explicit ShortSteps(int64_t n) : len(n) {}

  // noisy_row of rows r0 .. r0 + n - 1 of x (lanes past them: a defined row).
  void noisy(const T* x, const RowSpec& xs, PhiloxKey key, uint64_t first_row, int64_t r0,
             int64_t n) {
    alignas(64) T xc[kShortMax * W];
    load_columns(x, xs, r0, n, len, T(0), xc);
    ShortNoise<T> noise;
    const T* g = noise.fill_columns(key, first_row, r0, n, len, Draw::gumbel);
    const NoisyColumns<T> st = noisy_columns(xc, g, len, r);
    max = st.max;
    at = st.at;
    defined = st.defined;
  }

  // The k steps (relaxed_steps): kStoreA, a_j into dst + j * len and the steps' lanes,
  // I, O and S above; else dst += a_j.  Returns the number of steps any lane took.
  template <bool kStoreA>
  int64_t run(int64_t k, V itau, V* dst) {
    const I flat = itau == T(0);
    I lv = defined;
    for (int64_t j = 0; j < k; ++j) {
      lv &= max > kNinf<T>;
      if (!lanes::any_set(lv)) return j;
      V rI{}, e[kShortMax], part[kLanes] = {};
      I col{};
      for (int64_t c = 0; c < len; ++c, col += 1) {
        rI = lanes::select(col == at, r[c], rI);
        r[c] = lanes::select(col == at, lanes::splat<V>(kNinf<T>), r[c]);
        const V ef = lanes::select(r[c] == kNinf<T>, V{}, lanes::splat<V>(T(1)));
        e[c] = lanes::select(flat, ef, vmath::exp_scaled_nonpos<0>((r[c] - max) * itau));
        part[c % kLanes] = part[c % kLanes] + e[c];
      }
      const V o = T(0) + tree_sum(part), s = o + T(1), inv_sum = T(1) / s;
      if (kStoreA) {
        live[j] = lv;
        idx[j] = at;
        O[j] = o;
        S[j] = s;
      }
      V* d = kStoreA ? dst + j * len : dst;
      const bool last = j + 1 == k;
      V nmax = lanes::splat<V>(kNinf<T>);
      I nat{};
      col = I{};
      for (int64_t c = 0; c < len; ++c, col += 1) {
        const V ac = e[c] * inv_sum;
        d[c] = kStoreA ? ac : lanes::select(lv, d[c] + ac, d[c]);
        d[c] = lanes::select(lv & (col == at), kStoreA ? inv_sum : d[c] + inv_sum, d[c]);
        if (last) continue;
        r[c] = lanes::select(lv, r[c] + log1m(ac), r[c]);
        const I greater = r[c] > nmax;
        nmax = lanes::select(greater, r[c], nmax);
        nat = greater ? col : nat;
      }
      if (last) return k;
      V rnew;
      for (int i = 0; i < W; ++i) rnew[i] = rI[i] + log_rest(o[i], s[i], inv_sum[i]);
      col = I{};
      for (int64_t c = 0; c < len; ++c, col += 1)
        r[c] = lanes::select(lv & (col == at), rnew, r[c]);
      const I take = (rnew > nmax) | ((rnew == nmax) & (at < nat));
      max = lanes::select(lv, lanes::select(take, rnew, nmax), max);
      at = lv ? (take ? at : nat) : at;
    }
    return k;
  }

  // Columns v of the group into out (NaN canonical; rows with no sample: NaN).
  void put(const V* v, T* out) const {
    for (int64_t c = 0; c < len; ++c)
      lanes::store(out + c * W, lanes::select(defined, canonical(v[c]), lanes::splat<V>(kNaN<T>)));
  }
};
#endif

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
