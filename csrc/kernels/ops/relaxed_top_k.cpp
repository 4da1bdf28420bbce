// Op "relaxed_top_k": the relaxed k-subset sample of Xie & Ermon (IJCAI 2019), k
// successive softmaxes of the perturbed logits, and its gradient, recomputed from the
// generator state.  The formulas, their stable form and the backward's derivation are in
// docs/contract.md ("Relaxed top-k").
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Row by row, with g the noise of gumbel_softmax's row (same counters): r = x + g, then
// for j = 1..k: r += log(1 - a_{j-1}) (j > 1) and a_j = softmax(r / tau); the relaxed
// sample is sum_j a_j.  y gets the relaxed sample, or with hard the k-hot of the k
// largest x + g (top_k's indices), and then y_soft (when non-null) the relaxed sample.
// Rows with a NaN or +inf x, or with no finite x, are NaN.  1 <= k <= len.
template <class T>
struct RelaxedTopKArgs {
  const T* x = nullptr;
  RowSpec xs;
  T* y = nullptr;
  RowSpec ys;
  T* y_soft = nullptr;
  RowSpec ss;
  int64_t k = 1;
  T inv_tau = 1;                // for every row, unless
  const T* inv_taus = nullptr;  // one per row, contiguous
  bool hard = false;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// out = d(sum(grad_y * y)) / dx for the relaxed sample y of the forward call with the
// same x, k, tau, key and first_row, recomputed row by row (undefined rows: NaN).
template <class T>
struct RelaxedTopKBackwardArgs {
  const T* grad_y = nullptr;
  RowSpec gs;
  const T* x = nullptr;
  RowSpec xs;
  T* out = nullptr;
  RowSpec os;
  int64_t k = 1;
  T inv_tau = 1;
  const T* inv_taus = nullptr;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// logits: float32/float64 of any strides, k in [1, len], out None or a validated array
// (the Python layer checks everything; k is checked again, the kernel trusts it).
template <class T>
py::object forward_impl(const py::array& logits, int64_t k, double tau, const py::object& inv_taus,
                        bool hard, int axis, const py::object& rng, const py::object& out,
                        bool return_soft) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  RelaxedTopKArgs<T> a;
  a.xs = rowspec_of(x, axis);
  if (k < 1 || k > a.xs.len) throw py::value_error("k out of range");
  py::array_t<T> y = result_like<T>(logits, out);
  py::array_t<T> y_soft;
  const bool separate_soft = hard && return_soft;
  if (separate_soft) y_soft = result_like<T>(logits, py::none());
  a.ys = rowspec_of(y, axis);
  if (separate_soft) a.ss = rowspec_of(y_soft, axis);
  a.x = x.data();
  a.y = y.mutable_data();
  a.y_soft = separate_soft ? y_soft.mutable_data() : nullptr;
  a.k = k;
  a.inv_tau = inverse_tau<T>(tau);
  a.inv_taus = per_row<T>(inv_taus);
  a.hard = hard;
  // Rows only once everything else has succeeded: a failed call consumes none.
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  if (!return_soft) return std::move(y);
  if (!hard) return py::make_tuple(y, y);
  return py::make_tuple(y, y_soft);
}

// grad_y and logits of one shape and dtype (the Python layer converts them).
template <class T>
py::object backward_impl(const py::array& grad_y, const py::array& logits, int64_t k, double tau,
                         const py::object& inv_taus, int axis, const py::object& rng,
                         const py::object& out) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  RelaxedTopKBackwardArgs<T> a;
  a.gs = rowspec_of(g, axis);
  a.xs = rowspec_of(x, axis);
  if (k < 1 || k > a.xs.len) throw py::value_error("k out of range");
  py::array_t<T> o = result_like<T>(grad_y, out);
  a.os = rowspec_of(o, axis);
  a.grad_y = g.data();
  a.x = x.data();
  a.out = o.mutable_data();
  a.k = k;
  a.inv_tau = inverse_tau<T>(tau);
  a.inv_taus = per_row<T>(inv_taus);
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(o);
}

void bind(py::module_& m) {
  m.def(
      "relaxed_top_k",
      [](const py::array& logits, int64_t k, double tau, const py::object& inv_taus, bool hard,
         int axis, const py::object& rng, const py::object& out, bool return_soft) {
        return is_double(logits) ? forward_impl<double>(logits, k, tau, inv_taus, hard, axis, rng,
                                                        out, return_soft)
                                 : forward_impl<float>(logits, k, tau, inv_taus, hard, axis, rng,
                                                       out, return_soft);
      },
      py::arg("logits"), py::arg("k"), py::arg("tau"), py::arg("inv_taus"), py::arg("hard"),
      py::arg("axis"), py::arg("rng"), py::arg("out"), py::arg("return_soft"));
  m.def(
      "relaxed_top_k_backward",
      [](const py::array& grad_y, const py::array& logits, int64_t k, double tau,
         const py::object& inv_taus, int axis, const py::object& rng, const py::object& out) {
        return is_double(grad_y)
                   ? backward_impl<double>(grad_y, logits, k, tau, inv_taus, axis, rng, out)
                   : backward_impl<float>(grad_y, logits, k, tau, inv_taus, axis, rng, out);
      },
      py::arg("grad_y"), py::arg("logits"), py::arg("k"), py::arg("tau"), py::arg("inv_taus"),
      py::arg("axis"), py::arg("rng"), py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/pass1.hpp"
#include "rows/schedule.hpp"
#include "rows/select.hpp"

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

template <class T>
struct RelaxedTopKOp : Schedule {
  const RelaxedTopKArgs<T>& a;
  const int64_t len, L, k, nitems;
  T* const soft;  // where the relaxed sample goes (null: the k-hot alone)
  const RowSpec& ss;
  Scratch<T> bufs;  // per thread: r, e and the sample (3 L)
  Scratch<int64_t> chosen, ibuf;
  Scratch<Item<T>> items;

  explicit RelaxedTopKOp(const RelaxedTopKArgs<T>& args)
      : a(args),
        len(args.xs.len),
        L(padded(args.xs.len)),
        k(args.k),
        nitems(std::min(args.k, kInsertK)),
        soft(args.hard ? args.y_soft : args.y),
        ss(args.hard ? args.ss : args.ys) {}

  // Scratch per thread, allocated before anything is written.
  void begin_rows(int nthreads) {
    const int64_t n = nthreads;
    bufs.resize(n * 3 * L);
    if (a.hard) {
      chosen.resize(n * k);
      items.resize(n * nitems);
      ibuf.resize(k > kInsertK ? n * len : 0);
    }
  }
  // The k-hot of the k largest v = x + g into row r of y: top_k's choice (the same
  // selection), -inf never chosen.
  void khot(int64_t r, const T* v, int tid) const {
    int64_t* o = chosen.data() + tid * k;
    select_top(v, len, k, o, items.data() + tid * nitems,
               k > kInsertK ? ibuf.data() + tid * len : nullptr);
    T* yr = a.y + row_offset(a.ys, r);
    fill_row(yr, a.ys.step, len, T(0));
    for (int64_t j = 0; j < k; ++j)
      if (o[j] >= 0) yr[o[j] * a.ys.step] = T(1);
  }
  void row(int64_t r, int tid) const {
    T* rb = bufs.data() + static_cast<int64_t>(tid) * 3 * L;
    T* e = rb + L;
    T* y = e + L;
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    const T* xr = a.x + row_offset(a.xs, r);
    // row r + 1's x and output, fetched meanwhile (see next_row_prefetch)
    const auto pf = next_row_prefetch(a.x, a.xs, soft ? soft : a.y, soft ? &ss : &a.ys, r, xr);
    const RowStats<T> st = noisy_row(xr, a.xs.step, len, a.key, q, rb, pf);
    T* soft_row = soft ? soft + row_offset(ss, r) : nullptr;
    if (!st.defined()) {
      if (a.hard) fill_nan(a.y + row_offset(a.ys, r), a.ys.step, len);
      if (soft) fill_nan(soft_row, ss.step, len);
      return;
    }
    if (a.hard) khot(r, rb, tid);  // before the steps change r
    if (!soft) return;
    for (int64_t c = 0; c < L; ++c) y[c] = T(0);
    const T itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    relaxed_steps<false>(rb, e, y, L, k, itau, Top<T>{st.max, st.argmax},
                         static_cast<StepInfo<T>*>(nullptr));
    write_row(y, soft_row, ss.step, len);
  }
};

template <class T>
void relaxed_top_k_kernel(const RelaxedTopKArgs<T>& a) {
  if (a.xs.nrows == 0) return;
  RelaxedTopKOp<T> op(a);
  run_schedule<T>(op, a.xs.nrows, a.xs.len);
}

// ----- the backward -------------------------------------------------------------
// With G = grad_y, delta = dL/dr^{j+1} (0 for j = k) and a = a_j, step j gives
//   dL/dr^j_m = delta_m + (1/tau) (a_m (G_m - AG + H) - h_m delta_m),
//   AG = sum_i a_i G_i,  h_i = a_i / (1 - a_i),  H = sum_i h_i delta_i,
// (docs/contract.md derives it).  h_I of the argmax I can be huge (1 - a_I tiny), so it
// never appears alone: H = H' + q with H' the sum over the others and
// q = a_I delta_I / (1 - a_I) = a_I delta_I S / O, which the others meet only as
// a_m q with a_m <= 1 - a_I, and at I the terms combine to
//   delta_I + (1/tau) a_I ((G_I - AG + H') - delta_I).

// AG and H' over the padded row (a_I set to 0 by the caller), in the fixed order.
template <class T>
void backward_sums(const T* A, const T* G, const T* D, int64_t L, T& AG, T& H) {
  AG = T(0);
  H = T(0);
  for (int64_t b = 0; b < L; b += kSegment) {
    const int64_t end = std::min(L, b + kSegment);
    T ag[kLanes] = {}, hd[kLanes] = {};
#ifdef GS_HAVE_VECTOR_EXT
    using V = Vec<T>;
    V vag[kSub<T>] = {}, vhd[kSub<T>] = {};
    for (int64_t c = b; c < end; c += kLanes)
      for (int s = 0; s < kSub<T>; ++s) {
        const int64_t o = c + s * kW<T>;
        const V av = lanes::load<V>(A + o);
        vag[s] = lanes::fma(av, lanes::load<V>(G + o), vag[s]);
        vhd[s] = lanes::fma(av / (T(1) - av), lanes::load<V>(D + o), vhd[s]);
      }
    spill<T>(vag, ag);
    spill<T>(vhd, hd);
#else
    for (int64_t c = b; c < end; c += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const T av = A[c + j];
        ag[j] = lanes::fma(av, G[c + j], ag[j]);
        hd[j] = lanes::fma(av / (T(1) - av), D[c + j], hd[j]);
      }
#endif
    AG = AG + tree_sum(ag);
    H = H + tree_sum(hd);
  }
}

// delta_m += (1/tau) (a_m (G_m + cst) - h_m delta_m) over the padded row.
template <class T>
void backward_update(const T* A, const T* G, T* D, int64_t L, T itau, T cst) {
  int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  for (; c < L; c += kW<T>) {
    const V av = lanes::load<V>(A + c);
    const V dv = lanes::load<V>(D + c);
    const V t = lanes::fma(-(av / (T(1) - av)), dv, av * (lanes::load<V>(G + c) + cst));
    lanes::store(D + c, dv + itau * t);
  }
#endif
  for (; c < L; ++c) {
    const T av = A[c];
    D[c] = D[c] + itau * lanes::fma(-(av / (T(1) - av)), D[c], av * (G[c] + cst));
  }
}

// The a_m q terms one by one, as (a_m S / O) (a_I delta_I), where q itself overflows (1 - a_I
// far below a_I delta_I; then a_m S / O <= 1 keeps each term finite).
template <class T>
GS_COLD void backward_far(const T* A, T* D, int64_t L, T itau, T Y, T O, T S) {
  for (int64_t c = 0; c < L; ++c) D[c] = D[c] + itau * (((A[c] * S) / O) * Y);
}

// One step of the backward on D (dL/dr^{j+1} in, dL/dr^j out), with A = a_j.
template <class T>
void backward_step(T* A, const T* G, T* D, int64_t L, T itau, const StepInfo<T>& s) {
  const int64_t I = s.idx;
  const T aI = A[I];
  A[I] = T(0);
  T AG, H;
  backward_sums(A, G, D, L, AG, H);
  AG = lanes::fma(aI, G[I], AG);
  const T Y = aI * D[I];
  const T q = s.O > T(0) ? (Y * s.S) / s.O : T(0);  // O = 0: every other a is 0
  const bool far = !(q - q == T(0));                // q is not finite
  backward_update(A, G, D, L, itau, (H - AG) + (far ? T(0) : q));
  if (far) backward_far(A, D, L, itau, Y, s.O, s.S);
  D[I] = D[I] + itau * (aI * (((G[I] - AG) + H) - D[I]));
  A[I] = aI;
}

template <class T>
struct RelaxedTopKBackwardOp : Schedule {
  const RelaxedTopKBackwardArgs<T>& a;
  const int64_t len, L, k;
  Scratch<T> bufs;  // per thread: r (then dL/dr), e (then grad_y), the k steps' a: (k + 2) L
  Scratch<StepInfo<T>> infos;  // per thread: k

  explicit RelaxedTopKBackwardOp(const RelaxedTopKBackwardArgs<T>& args)
      : a(args), len(args.xs.len), L(padded(args.xs.len)), k(args.k) {}

  void begin_rows(int nthreads) {
    const int64_t n = nthreads;
    bufs.resize(scratch_size(n, scratch_size(k + 2, L)));
    infos.resize(n * k);
  }
  void row(int64_t r, int tid) const {
    T* rb = bufs.data() + static_cast<int64_t>(tid) * (k + 2) * L;
    T* e = rb + L;
    T* A = e + L;
    StepInfo<T>* info = infos.data() + static_cast<int64_t>(tid) * k;
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    const RowStats<T> st = noisy_row(a.x + row_offset(a.xs, r), a.xs.step, len, a.key, q, rb);
    T* o = a.out + row_offset(a.os, r);
    if (!st.defined()) return fill_nan(o, a.os.step, len);
    const T itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    const int64_t n = relaxed_steps<true>(rb, e, A, L, k, itau, Top<T>{st.max, st.argmax}, info);
    const T* g = a.grad_y + row_offset(a.gs, r);
    for (int64_t c = 0; c < L; ++c) {
      e[c] = c < len ? g[c * a.gs.step] : T(0);
      rb[c] = T(0);
    }
    for (int64_t j = n - 1; j >= 0; --j) backward_step(A + j * L, e, rb, L, itau, info[j]);
    write_row(rb, o, a.os.step, len);
  }
};

template <class T>
void relaxed_top_k_backward_kernel(const RelaxedTopKBackwardArgs<T>& a) {
  if (a.xs.nrows == 0) return;
  RelaxedTopKBackwardOp<T> op(a);
  run_schedule<T>(op, a.xs.nrows, a.xs.len);
}

}  // namespace

GS_KERNEL(RelaxedTopKArgs, relaxed_top_k_kernel)
GS_KERNEL(RelaxedTopKBackwardArgs, relaxed_top_k_backward_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
