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
#include "relaxed_steps.hpp"
#include "rows/schedule.hpp"
#include "rows/select.hpp"
#include "rows/short_rows.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

template <class T>
struct RelaxedTopKOp;
#ifdef GS_HAVE_VECTOR_EXT
template <class T>
void relaxed_top_k_short_group(const RelaxedTopKOp<T>& op, int64_t r0, int64_t n);
#endif

template <class T>
struct RelaxedTopKOp : Schedule {
  static constexpr bool kShortRows = true;
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

#ifdef GS_HAVE_VECTOR_EXT
  void short_group(int64_t r0, int64_t n) const { relaxed_top_k_short_group(*this, r0, n); }
#endif
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
  // o (k), items (min(k, kInsertK)) and idx (len, for k > kInsertK): scratch.
  void khot(int64_t r, const T* v, int64_t* o, Item<T>* items_, int64_t* idx) const {
    select_top(v, len, k, o, items_, idx);
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
    if (a.hard)  // before the steps change r
      khot(r, rb, chosen.data() + tid * k, items.data() + tid * nitems,
           k > kInsertK ? ibuf.data() + tid * len : nullptr);
    if (!soft) return;
    for (int64_t c = 0; c < L; ++c) y[c] = T(0);
    const T itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    relaxed_steps<false>(rb, e, y, L, k, itau, Top<T>{st.max, st.argmax},
                         static_cast<StepInfo<T>*>(nullptr));
    write_row(y, soft_row, ss.step, len);
  }
};

#ifdef GS_HAVE_VECTOR_EXT
// The k-hot of rows r0 .. r0 + n - 1 from v = x + g in columns (NaN where undefined).
static_assert(kShortMax <= kInsertK, "a short row's k-hot selects by insertion");
template <class T>
void short_khot(const RelaxedTopKOp<T>& op, int64_t r0, int64_t n, const Vec<T>* r,
                lanes::Int<Vec<T>> defined) {
  const RelaxedTopKArgs<T>& a = op.a;
  alignas(64) T v[kShortMax];
  int64_t o[kShortMax];
  Item<T> items[kShortMax];  // (k <= len <= kShortMax <= kInsertK)
  for (int64_t i = 0; i < n; ++i) {
    if (!defined[i]) {
      fill_nan(a.y + row_offset(a.ys, r0 + i), a.ys.step, op.len);
      continue;
    }
    for (int64_t c = 0; c < op.len; ++c) v[c] = r[c][i];
    op.khot(r0 + i, v, o, items, nullptr);
  }
}

// A group of short rows (rows/short_rows.hpp), one row per vector lane: row()'s
// operations in its order, per lane (ShortSteps); the k-hot per row, from the columns of v.
template <class T>
void relaxed_top_k_short_group(const RelaxedTopKOp<T>& op, int64_t r0, int64_t n) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  const RelaxedTopKArgs<T>& a = op.a;
  ShortSteps<T> st(op.len);
  st.noisy(a.x, a.xs, a.key, a.first_row, r0, n);
  if (a.hard) {
    short_khot(op, r0, n, st.r, st.defined);
    if (!op.soft) return;
  }
  V y[kShortMax] = {};
  st.template run<false>(a.k, row_lanes(a.inv_taus, 1, r0, n, a.inv_tau), y);
  alignas(64) T out[kShortMax * W];
  st.put(y, out);
  store_columns(out, op.soft, op.ss, r0, n, op.len);
}
#endif

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

#ifdef GS_HAVE_VECTOR_EXT
// backward_step on a group of short rows, one row per lane: D (dL/dr) and the step's
// A = a_j in columns; lanes that did not take step j keep D.  backward_step's operations
// in its order (element c in partial sum c % 16), at every element including I.
template <class T>
void short_backward_step(const ShortSteps<T>& st, int64_t j, Vec<T>* A, const Vec<T>* G, Vec<T>* D,
                         Vec<T> itau) {
  using V = Vec<T>;
  using I = lanes::Int<V>;
  const I live = st.live[j], at = st.idx[j];
  const int64_t len = st.len;
  V aI{}, GI{}, ag[kLanes] = {}, hd[kLanes] = {};
  I col{};
  for (int64_t c = 0; c < len; ++c, col += 1) {
    aI = lanes::select(col == at, A[c], aI);
    GI = lanes::select(col == at, G[c], GI);
    A[c] = lanes::select(col == at, V{}, A[c]);
    ag[c % kLanes] = lanes::fma(A[c], G[c], ag[c % kLanes]);
    hd[c % kLanes] = lanes::fma(A[c] / (T(1) - A[c]), D[c], hd[c % kLanes]);
  }
  const V AG = lanes::fma(aI, GI, T(0) + tree_sum(ag)), H = T(0) + tree_sum(hd);
  const V O = st.O[j], S = st.S[j];
  V DI{};
  col = I{};
  for (int64_t c = 0; c < len; ++c, col += 1) DI = lanes::select(col == at, D[c], DI);
  const V Y = aI * DI;
  const V q = lanes::select(O > T(0), (Y * S) / O, V{});
  const I far = ~((q - q) == T(0));
  const V cst = (H - AG) + lanes::select(far, V{}, q);
  const bool any_far = lanes::any_set(far & live);
  for (int64_t c = 0; c < len; ++c) {
    const V t = lanes::fma(-(A[c] / (T(1) - A[c])), D[c], A[c] * (G[c] + cst));
    V d = D[c] + itau * t;
    if (any_far) d = lanes::select(far, d + itau * (((A[c] * S) / O) * Y), d);
    D[c] = lanes::select(live, d, D[c]);
  }
  col = I{};
  for (int64_t c = 0; c < len; ++c, col += 1) {
    const V d = D[c] + itau * (aI * (((GI - AG) + H) - D[c]));
    D[c] = lanes::select(live & (col == at), d, D[c]);
  }
}

// A group of short rows, one row per vector lane: row()'s operations in its order, per
// lane (ShortSteps with the steps' a stored, then short_backward_step from the last).
template <class T>
void relaxed_backward_short_group(const RelaxedTopKBackwardArgs<T>& a, int64_t r0, int64_t n) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  const int64_t len = a.xs.len;
  ShortSteps<T> st(len);
  st.noisy(a.x, a.xs, a.key, a.first_row, r0, n);
  const V itau = row_lanes(a.inv_taus, 1, r0, n, a.inv_tau);
  V A[kShortMax * kShortMax];  // step j's a: A + j * len
  const int64_t steps = st.template run<true>(a.k, itau, A);
  alignas(64) T g[kShortMax * W];
  load_columns(a.grad_y, a.gs, r0, n, len, T(0), g);
  V G[kShortMax], D[kShortMax];
  for (int64_t c = 0; c < len; ++c) {
    G[c] = lanes::load<V>(g + c * W);
    D[c] = V{};
  }
  for (int64_t j = steps - 1; j >= 0; --j) short_backward_step(st, j, A + j * len, G, D, itau);
  st.put(D, g);
  store_columns(g, a.out, a.os, r0, n, len);
}
#endif

template <class T>
struct RelaxedTopKBackwardOp : Schedule {
  static constexpr bool kShortRows = true;
  const RelaxedTopKBackwardArgs<T>& a;
  const int64_t len, L, k;
  Scratch<T> bufs;  // per thread: r (then dL/dr), e (then grad_y), the k steps' a: (k + 2) L
  Scratch<StepInfo<T>> infos;  // per thread: k

  explicit RelaxedTopKBackwardOp(const RelaxedTopKBackwardArgs<T>& args)
      : a(args), len(args.xs.len), L(padded(args.xs.len)), k(args.k) {}

#ifdef GS_HAVE_VECTOR_EXT
  void short_group(int64_t r0, int64_t n) const { relaxed_backward_short_group(a, r0, n); }
#endif
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
    for (int64_t j = n - 1; j >= 0; --j) {
      backward_step(A + j * L, e, rb, L, itau, info[j]);
      if (row_should_stop(L)) return;  // (Ctrl-C, as in relaxed_steps)
    }
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
