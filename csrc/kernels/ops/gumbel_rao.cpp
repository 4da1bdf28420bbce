// Ops "gumbel_rao" (gs.gumbel_rao_backward, the GR-MCk gradient of Paulus, Maddison &
// Krause, ICLR 2021) and "one_hot_index" (its check of y_hard).
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Row r, with I = index[r], K = samples and draw k of the row from absolute stream row
// q = first_row + r * K + k (the rows conditional_gumbel would use for the row repeated
// K times):  out = (1 / (K tau)) sum_k p_k * (grad_y - sum(grad_y * p_k)),
// p_k = softmax(z_k / tau), z_k the conditional draw given argmax = I (see
// conditional_gumbel), computed from L = z_I - z >= 0 as p_k ∝ exp(-L / tau) (no
// rounding of z itself).  Rows with a NaN or +inf x are NaN.  index: one per row,
// contiguous, at a finite x (checked by one_hot_index).
template <class T>
struct GumbelRaoArgs {
  const T* grad_y = nullptr;
  RowSpec gs;
  const T* x = nullptr;
  RowSpec xs;
  const int64_t* index = nullptr;
  T* out = nullptr;
  RowSpec os;
  T inv_tau = 1;
  const T* inv_taus = nullptr;
  int64_t samples = 1;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// index[r] = the position of the 1 in row r of y, when the row is an exact one-hot (one
// 1, every other entry 0) whose 1 stands at a logit x other than -inf; else bad[0] =
// the first such row r, bad[1] = 1 (not a one-hot) or 2 (at a -inf logit).
template <class T>
struct OneHotArgs {
  const T* y = nullptr;
  RowSpec ys;
  const T* x = nullptr;
  RowSpec xs;
  int64_t* index = nullptr;
  int64_t* bad = nullptr;  // 2 values, set by the caller to (-1, 0)
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include <string>

#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// The index of each row's 1 in y_hard (checked: an exact one-hot at a logit that is
// not -inf), as an int64 array of nrows, before anything is written or drawn.
template <class T>
py::array_t<int64_t> one_hot_index(const py::array_t<T>& y, const py::array_t<T>& x, int axis) {
  OneHotArgs<T> a;
  a.ys = rowspec_of(y, axis);
  a.xs = rowspec_of(x, axis);
  py::array_t<int64_t> index(a.ys.nrows);
  int64_t bad[2] = {-1, 0};
  a.y = y.data();
  a.x = x.data();
  a.index = index.mutable_data();
  a.bad = bad;
  run_kernel([&] { run(a); });
  if (bad[0] >= 0) {
    const std::string row = "y_hard row " + std::to_string(bad[0]) + " (in C order over the batch)";
    throw py::value_error(
        bad[1] == 1 ? row + " is not an exact one-hot (one 1.0, every other entry 0.0)"
                    : row + " has its 1 at a -inf (masked) logit, a category of probability 0");
  }
  return index;
}

// grad_y, logits, y_hard: float32/float64 of one dtype and shape, any strides (checked by
// the Python layer); rows = samples * nrows rows of the stream.
template <class T>
py::object gumbel_rao_impl(const py::array& grad_y, const py::array& logits,
                           const py::array& y_hard, double tau, const py::object& inv_taus,
                           int64_t samples, int axis, const py::object& rng,
                           const py::object& out) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  py::array_t<T> o = result_like<T>(grad_y, out);  // first: MemoryError before any work
  const py::array_t<int64_t> index =
      one_hot_index<T>(py::reinterpret_borrow<py::array_t<T>>(y_hard), x, axis);
  GumbelRaoArgs<T> a;
  a.gs = rowspec_of(g, axis);
  a.xs = rowspec_of(x, axis);
  a.os = rowspec_of(o, axis);
  a.grad_y = g.data();
  a.x = x.data();
  a.index = index.data();
  a.out = o.mutable_data();
  a.inv_taus = per_row<T>(inv_taus);
  a.inv_tau = inverse_tau<T>(tau);
  if (samples < 1) throw py::value_error("samples must be at least 1");
  a.samples = samples;
  // Rows only once everything else has succeeded: a failed call consumes none.  The
  // Python layer checked that samples * nrows < 2**64.
  const Rows rows = take_rows(rng, static_cast<uint64_t>(a.xs.nrows) * samples);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(o);
}

void bind(py::module_& m) {
  m.def(
      "gumbel_rao_backward",
      [](const py::array& grad_y, const py::array& logits, const py::array& y_hard, double tau,
         const py::object& inv_taus, int64_t samples, int axis, const py::object& rng,
         const py::object& out) {
        return is_double(grad_y) ? gumbel_rao_impl<double>(grad_y, logits, y_hard, tau, inv_taus,
                                                           samples, axis, rng, out)
                                 : gumbel_rao_impl<float>(grad_y, logits, y_hard, tau, inv_taus,
                                                          samples, axis, rng, out);
      },
      py::arg("grad_y"), py::arg("logits"), py::arg("y_hard"), py::arg("tau"), py::arg("inv_taus"),
      py::arg("samples"), py::arg("axis"), py::arg("rng"), py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/conditional.hpp"
#include "rows/short_rows.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// ----- one_hot_index ---------------------------------------------------------------
template <class T>
void one_hot_kernel(const OneHotArgs<T>& a) {
  const int64_t len = a.ys.len;
  // index[r] = the 1's position, or -1 (not a one-hot) or -2 (at a -inf logit)
  for_rows(a.ys.nrows, threads_for(a.ys.nrows, len), [&](int64_t r, int) {
    const T* y = a.y + row_offset(a.ys, r);
    int64_t at = -1;
    for (int64_t c = 0; c < len; ++c) {
      const T v = y[c * a.ys.step];
      if (v == T(0)) continue;
      if (v != T(1) || at >= 0) {
        at = -1;
        break;
      }
      at = c;
    }
    if (at >= 0 && a.x[row_offset(a.xs, r) + at * a.xs.step] == -std::numeric_limits<T>::infinity())
      at = -2;
    a.index[r] = at;
  });
  for (int64_t r = 0; r < a.ys.nrows; ++r)
    if (a.index[r] < 0) {
      a.bad[0] = r;
      a.bad[1] = a.index[r] == -1 ? 1 : 2;
      return;
    }
}

// ----- gumbel_rao ------------------------------------------------------------------
// The row is worked on in per-thread buffers of P = len rounded up to 16 elements (the
// padding makes every loop whole 16-element steps; padded entries contribute +0 to
// every sum, as -inf logits do):
//   q   the row's constant of the draws: fast rows Q_j = exp(lse - x_j) (Q_I = 0, -inf
//       logits and padding +inf); wide rows x itself (x_I = +inf, padding -inf);
//   g   grad_y (padding 0), e the current draw's unnormalised p_k, acc the sum over k.
//
// L_j = z_I - z_j of a draw, with lse = logsumexp(x), g_j = -log E_j (the noise of
// gumbel_softmax's row q) and v_j = x_j + g_j:
//   z_I = lse + g_I,  z_j = -log(exp(-z_I) + exp(-v_j)),  so
//   L_j = log1p(exp(z_I - v_j)) = log1p(w_j),  w_j = E_j Q_j / E_I.
// Fast rows compute w_j in three products (no log of E_j, no cancellation): when
// lse - x_j <= kFastRange for every finite x_j, Q_j E_j / E_I < 2^127 (float32) resp.
// 2^1020 (float64) with E in [2^-33, 23] resp. [2^-65, 46].  Wider rows take the
// conditional_gumbel formula L_j = max(z_I - v_j, 0) + log1p(exp(-|z_I - v_j|)).
// p_k ∝ exp(-L / tau), which is 1 / (1 + w) when tau = 1 (fast rows: no exp, no log).
template <class T>
constexpr T kFastRange = sizeof(T) == 4 ? T(60) : T(650);

#ifdef GS_HAVE_VECTOR_EXT
template <class T>
using Lane = Vec<T>;
template <class T>
constexpr int kWidth = kW<T>;
#else
template <class T>
using Lane = T;
template <class T>
constexpr int kWidth = 1;
#endif

// Loads and stores of a Lane: a native vector, or a scalar without vector extensions
// (where lanes::load and lanes::store do not exist).
template <class V, class S>
GS_INLINE V lane_load(const S* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class S, class V>
GS_INLINE void lane_store(S* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// log(1 + w) for w >= 0 finite (lanes or a scalar): log1p_reduced(w) below sqrt(2) - 1,
// else log(1 + w) (1 + w rounded: at most 1.5 ulp more, see docs/contract.md).
template <class V>
GS_INLINE V log1p_pos(V w) {
  using S = typename lanes::Traits<V>::Scalar;
  V e, f;
  vmath::log_reduce(w + S(1), e, f);
  const auto small = w < S(0.41421356237309503);
  return vmath::log_combine(lanes::select(small, lanes::splat<V>(S(0)), e),
                            lanes::select(small, w, f));
}

// The sums of one draw over a row: S = sum(e), D = sum(g * e) (16 lanes, segments).
template <class T>
struct DrawSums {
  T s, d;
};

// Kinds of row: fast (w form), fast with tau = 1, wide (conditional_gumbel's form).
enum class RowKind { fast, unit, wide };

// One draw on elements [begin, end) (multiples of 16): e_j into e, and its sums.  kind,
// with zi = z_I (wide) or 1 / E_I (fast), itau = 1/tau.
template <RowKind kKind, class T>
GS_INLINE DrawSums<T> draw_segment(const T* q, const T* g, T* e, int64_t begin, int64_t end,
                                   PhiloxKey key, uint64_t row, T zi, T itau, uint32_t* words) {
  using V = Lane<T>;
  constexpr int W = kWidth<T>;
  constexpr int wpe = words_per_element<T>();
  [[maybe_unused]] constexpr T kInf = std::numeric_limits<T>::infinity();
  V vs[kLanes / W] = {}, vd[kLanes / W] = {};
#ifdef GS_HAVE_VECTOR_EXT
  const philox::RowBlocks blocks(key, row);
#endif
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
#ifdef GS_HAVE_VECTOR_EXT
    chunk_words<T>(blocks, c0, n, words);
#else
    chunk_words<T>(key, row, c0, n, words);
#endif
    // Three short loops over the chunk (E, then L, then e and the sums), whose
    // iterations are independent, rather than one long dependency chain per vector.
    T* ec = e + c0;
    for (int64_t o = 0; o < n; o += W)
      lane_store(ec + o, bits_to_exponential<V>(lane_load<lanes::UInt<V>>(words + o * wpe)));
    for (int64_t o = 0; o < n; o += W) {
      const V E = lane_load<V>(ec + o), qv = lane_load<V>(q + c0 + o);
      V L;
      if constexpr (kKind == RowKind::wide) {
        const V d = zi + vmath::log(E) - qv;  // z_I - v: +inf at -inf x, -inf at I
        const V ad = lanes::select(d < T(0), -d, d);
        L = lanes::select(d < T(0), lanes::splat<V>(T(0)), d) + log1p_unit(vmath::exp(-ad));
      } else {
        const V w = (E * zi) * qv;  // +inf at -inf x and padding, 0 at I
        if constexpr (kKind == RowKind::unit)
          L = T(1) / (w + T(1));  // e itself
        else                      // +inf stays +inf (e = 0 below)
          L = lanes::select(w < kInf, log1p_pos(lanes::select(w < kInf, w, lanes::splat<V>(T(0)))),
                            w);
      }
      lane_store(ec + o, L);
    }
    for (int64_t i = 0; i < n; i += kLanes)
      for (int k = 0; k < kLanes / W; ++k) {
        const int64_t o = i + k * W;
        V ev = lane_load<V>(ec + o);
        if constexpr (kKind != RowKind::unit)
          ev = lanes::select(ev < kInf, vmath::exp_scaled_nonpos<0>(-(ev * itau)),
                             lanes::splat<V>(T(0)));
        lane_store(ec + o, ev);
        vs[k] = vs[k] + ev;
        vd[k] = lanes::fma(lane_load<V>(g + c0 + o), ev, vd[k]);
      }
  }
  T as[kLanes], ad[kLanes];  // lane j of vector k is partial sum k * W + j
  std::memcpy(as, vs, sizeof as);
  std::memcpy(ad, vd, sizeof ad);
  return {tree_sum(as), tree_sum(ad)};
}

// acc += p * (g - dp), p = e * c, over the padded row.
template <class T>
GS_INLINE void accumulate(const T* e, const T* g, T* acc, int64_t n, T c, T dp) {
  using V = Lane<T>;
  constexpr int W = kWidth<T>;
  for (int64_t i = 0; i < n; i += W) {
    const V p = lane_load<V>(e + i) * c;
    lane_store(acc + i, lanes::fma(p, lane_load<V>(g + i) - dp, lane_load<V>(acc + i)));
  }
}

template <class T>
struct GumbelRaoOp {
  const GumbelRaoArgs<T>& a;
  const int64_t len, padded;
  Scratch<T> scratch;  // per thread: q, g, e, acc (padded elements each)
  explicit GumbelRaoOp(const GumbelRaoArgs<T>& args)
      : a(args), len(args.xs.len), padded((args.xs.len + kLanes - 1) / kLanes * kLanes) {}

  // The row's constant q (see above); returns its kind, or false for an undefined row.
  bool prepare(int64_t r, int64_t i, T* q, T& lse, bool& fast) const {
    constexpr T kInf = std::numeric_limits<T>::infinity();
    const T* xr = a.x + row_offset(a.xs, r);
    T xmin = kInf;
    bool bad = false;
    for (int64_t c = 0; c < len; ++c) {
      const T v = xr[c * a.xs.step];
      q[c] = v;
      bad = bad || !(v < kInf);
      if (v > -kInf && v < xmin) xmin = v;
    }
    if (bad) return false;
    for (int64_t c = len; c < padded; ++c) q[c] = -kInf;
    lse = row_logsumexp(q, len, row_max(q, 1, 0, len));
    fast = lse - xmin <= kFastRange<T>;
    if (!fast) {
      q[i] = kInf;
      return true;
    }
    using V = Lane<T>;
    for (int64_t c = 0; c < padded; c += kWidth<T>)
      lane_store(q + c, vmath::exp(lse - lane_load<V>(q + c)));
    q[i] = T(0);
    return true;
  }

  // One draw: its e, then acc += J(p) g.
  template <RowKind kKind>
  void draw(const T* q, const T* g, T* e, T* acc, uint64_t row, int64_t i, T lse, T itau) const {
    alignas(64) uint32_t words[kChunk * words_per_element<T>()];
    const T Ei = exponential_at<T>(a.key, row, i);
    const T zi = kKind == RowKind::wide ? lse - vmath::log(Ei) : T(1) / Ei;
    DrawSums<T> sum =
        draw_segment<kKind>(q, g, e, 0, std::min(padded, kSegment), a.key, row, zi, itau, words);
    for (int64_t b = kSegment; b < padded; b += kSegment) {
      const DrawSums<T> seg = draw_segment<kKind>(q, g, e, b, std::min(padded, b + kSegment), a.key,
                                                  row, zi, itau, words);
      sum.s = sum.s + seg.s;
      sum.d = sum.d + seg.d;
    }
    const T c = T(1) / sum.s;
    accumulate(e, g, acc, padded, c, sum.d * c);
  }

  void row(int64_t r, int tid) const { row_in(r, scratch.data() + tid * 4 * padded); }

  // Row r in the buffers at q (4 * padded elements).
  void row_in(int64_t r, T* q) const {
    T *g = q + padded, *e = g + padded, *acc = e + padded;
    T* o = a.out + row_offset(a.os, r);
    const int64_t i = a.index[r];
    T lse;
    bool fast;
    if (!prepare(r, i, q, lse, fast)) return fill_nan(o, a.os.step, len);
    const T* gr = a.grad_y + row_offset(a.gs, r);
    if (a.gs.step == 1)
      std::memcpy(g, gr, static_cast<size_t>(len) * sizeof(T));
    else
      for (int64_t c = 0; c < len; ++c) g[c] = gr[c * a.gs.step];
    for (int64_t c = len; c < padded; ++c) g[c] = T(0);
    for (int64_t c = 0; c < padded; ++c) acc[c] = T(0);
    const T itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    const uint64_t row0 = a.first_row + static_cast<uint64_t>(r) * a.samples;
    for (int64_t k = 0; k < a.samples; ++k) {
      const uint64_t row = row0 + static_cast<uint64_t>(k);
      if (!fast)
        draw<RowKind::wide>(q, g, e, acc, row, i, lse, itau);
      else if (itau == T(1))
        draw<RowKind::unit>(q, g, e, acc, row, i, lse, itau);
      else
        draw<RowKind::fast>(q, g, e, acc, row, i, lse, itau);
      if (row_should_stop(len)) return;  // Ctrl-C: a long row of many samples stops too
    }
    const T scale = itau / static_cast<T>(a.samples);
    using V = Lane<T>;
    for (int64_t c = 0; c < padded; c += kWidth<T>)
      lane_store(acc + c, canonical(lane_load<V>(acc + c) * scale));
    if (a.os.step == 1)
      std::memcpy(o, acc, static_cast<size_t>(len) * sizeof(T));
    else
      for (int64_t c = 0; c < len; ++c) o[c * a.os.step] = acc[c];
  }
};

#ifdef GS_HAVE_VECTOR_EXT
// prepare() on the group's columns q (x read in; lanes past the group: a fast row):
// whether every row of the group is a fast row; if so, q then holds each row's Q.
template <class T>
bool short_prepare(const GumbelRaoArgs<T>& a, int64_t r0, int64_t n, const int64_t* idx, T* q) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const int64_t len = a.xs.len;
  load_columns(a.x, a.xs, r0, n, len, T(0), q);
  V max = lanes::splat<V>(-kInf), xmin = lanes::splat<V>(kInf);
  auto bad = max != max;  // all false
  for (int64_t c = 0; c < len; ++c) {
    const V xc = lanes::load<V>(q + c * W);
    bad = bad | ~(xc < kInf);
    max = lanes::select(xc > max, xc, max);
    xmin = lanes::select((xc > -kInf) & (xc < xmin), xc, xmin);
  }
  const V lse = columns_logsumexp(q, len, max);
  const auto fast = (lse - xmin <= kFastRange<T>)&~bad;
  for (int64_t i = 0; i < n; ++i)
    if (!fast[i]) return false;
  for (int64_t c = 0; c < len; ++c) {
    V qc = vmath::exp(lse - lanes::load<V>(q + c * W));
    for (int i = 0; i < W; ++i)
      if (idx[i] == c) qc[i] = T(0);
    lanes::store(q + c * W, qc);
  }
  return true;
}

// draw() of one conditional sample per lane (E: its exponentials in columns): acc += J(p) g.
template <bool kUnit, class T>
GS_INLINE void short_draw(const T* E, const int64_t* idx, const T* q, const T* g, T* e, T* acc,
                          int64_t len, Vec<T> itau) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  V ei;
  for (int i = 0; i < W; ++i) ei[i] = E[idx[i] * W + i];
  const V zi = T(1) / ei;
  V ps[kLanes] = {}, pd[kLanes] = {};
  for (int64_t c = 0; c < len; ++c) {
    const V w = (lanes::load<V>(E + c * W) * zi) * lanes::load<V>(q + c * W);
    V ev;
    if constexpr (kUnit) {
      ev = T(1) / (w + T(1));
    } else {
      const auto finite = w < kInf;
      const V L = lanes::select(finite, log1p_pos(lanes::select(finite, w, V{})), w);
      ev = lanes::select(L < kInf, vmath::exp_scaled_nonpos<0>(-(L * itau)), V{});
    }
    lanes::store(e + c * W, ev);
    ps[c % kLanes] = ps[c % kLanes] + ev;
    pd[c % kLanes] = lanes::fma(lanes::load<V>(g + c * W), ev, pd[c % kLanes]);
  }
  const V cs = T(1) / tree_sum(ps);
  const V dp = tree_sum(pd) * cs;
  for (int64_t c = 0; c < len; ++c) {
    const V p = lanes::load<V>(e + c * W) * cs;
    lanes::store(acc + c * W,
                 lanes::fma(p, lanes::load<V>(g + c * W) - dp, lanes::load<V>(acc + c * W)));
  }
}

// A group of short rows (rows/short_rows.hpp), one row per vector lane, when every row
// of the group is a fast row and either every 1/tau is 1 (RowKind::unit) or none is
// (RowKind::fast): prepare's, draw's and row's operations in their order, per lane.
// Element c goes to partial sum c % 16, the partial sums combine as tree_sum does, and
// the row path's padding (which adds exact zeros: e = 0 there) is left out.  Any other
// group (a NaN or +inf logit, a wide row, 1/tau = 1 in some rows only) runs row by row.
template <class T>
void gumbel_rao_short_group(const GumbelRaoOp<T>& op, int64_t r0, int64_t n) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  const GumbelRaoArgs<T>& a = op.a;
  const int64_t len = a.xs.len;
  alignas(64) T q[kShortMax * W], g[kShortMax * W], e[kShortMax * W], acc[kShortMax * W] = {};
  const V itau = row_lanes(a.inv_taus, 1, r0, n, a.inv_tau);
  bool any_unit = false, all_unit = true;
  for (int64_t i = 0; i < n; ++i) {
    any_unit = any_unit || itau[i] == T(1);
    all_unit = all_unit && itau[i] == T(1);
  }
  int64_t idx[W];
  for (int i = 0; i < W; ++i) idx[i] = i < n ? a.index[r0 + i] : 0;
  if ((any_unit && !all_unit) || !short_prepare(a, r0, n, idx, q)) {
    alignas(64) T buf[4 * kShortMax];
    for (int64_t r = r0; r < r0 + n; ++r) op.row_in(r, buf);
    return;
  }
  load_columns(a.grad_y, a.gs, r0, n, len, T(0), g);
  ShortNoise<T> noise;
  PhiloxKey keys[W];
  uint64_t rows[W];
  for (int i = 0; i < W; ++i) keys[i] = a.key;
  for (int64_t k = 0; k < a.samples; ++k) {
    for (int64_t i = 0; i < n; ++i)
      rows[i] = a.first_row + static_cast<uint64_t>(r0 + i) * a.samples + static_cast<uint64_t>(k);
    const T* E = noise.fill_columns(keys, rows, n, len, Draw::exponential);
    if (all_unit)
      short_draw<true>(E, idx, q, g, e, acc, len, itau);
    else
      short_draw<false>(E, idx, q, g, e, acc, len, itau);
  }
  const V scale = itau / static_cast<T>(a.samples);
  for (int64_t c = 0; c < len; ++c)
    lanes::store(acc + c * W, canonical(lanes::load<V>(acc + c * W) * scale));
  store_columns(acc, a.out, a.os, r0, n, len);
}
#endif

// Row by row (short rows: by groups); the threads' share is by the work of a row,
// len * samples.
template <class T>
void gumbel_rao_kernel(const GumbelRaoArgs<T>& a) {
  if (a.xs.nrows == 0 || a.xs.len == 0) return;  // nothing to compute (as run_schedule)
  GumbelRaoOp<T> op(a);
  const int64_t work =
      a.samples >= kParallelMinElements ? kParallelMinElements : a.xs.len * a.samples;
#ifdef GS_HAVE_VECTOR_EXT
  if (use_short_rows<T>(a.xs.len) && a.xs.len > 0) {
    for_groups<T>(a.xs.nrows, std::min(work, kParallelMinElements),
                  [&](int64_t r0, int64_t n) { gumbel_rao_short_group(op, r0, n); });
    return;
  }
#endif
  const int nthreads = threads_for(a.xs.nrows, std::min(work, kParallelMinElements));
  op.scratch.resize(static_cast<int64_t>(nthreads) * 4 * op.padded);
  for_rows(a.xs.nrows, nthreads, [&](int64_t r, int tid) { op.row(r, tid); });
}

}  // namespace

GS_KERNEL(OneHotArgs, one_hot_kernel)
GS_KERNEL(GumbelRaoArgs, gumbel_rao_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
