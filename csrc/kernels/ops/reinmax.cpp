// Op "reinmax": the backward of ReinMax (Liu et al., "Bridging Discrete and
// Backpropagation: Straight-Through and Beyond", NeurIPS 2023), gs.reinmax_backward.
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Row by row, with p0 = softmax(x), pt = softmax(x / tau), h = y_hard, u = grad_p -
// grad_y / 2 (grad_p null: 0) and p1 = (pt + h) / 2:
//   out = 2 J(p1) grad_y + J(p0) u = (pt + h) * (grad_y - d1) + p0 * (u - d0),
//   d1 = sum(p1 * grad_y), d0 = sum(p0 * u), J(p) = diag(p) - p p^T.
// Rows with a NaN, a +inf or only -inf in x are NaN.  out may be grad_y itself.
template <class T>
struct ReinmaxArgs {
  const T* grad_y = nullptr;
  RowSpec gs;
  const T* x = nullptr;
  RowSpec xs;
  const T* y_hard = nullptr;
  RowSpec hs;
  const T* grad_p = nullptr;
  RowSpec ps;
  T* out = nullptr;
  RowSpec os;
  T inv_tau = 1;
  const T* inv_taus = nullptr;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// Every array: float32/float64 of one dtype and shape, any strides (checked by the
// Python layer); grad_p may be None.
template <class T>
py::object reinmax_impl(const py::array& grad_y, const py::array& logits, const py::array& y_hard,
                        const py::object& grad_p, double tau, const py::object& inv_taus, int axis,
                        const py::object& out) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  auto h = py::reinterpret_borrow<py::array_t<T>>(y_hard);
  py::array_t<T> o = result_like<T>(grad_y, out);
  ReinmaxArgs<T> a;
  a.gs = rowspec_of(g, axis);
  a.xs = rowspec_of(x, axis);
  a.hs = rowspec_of(h, axis);
  a.os = rowspec_of(o, axis);
  a.grad_y = g.data();
  a.x = x.data();
  a.y_hard = h.data();
  a.out = o.mutable_data();
  py::array_t<T> p;
  if (!grad_p.is_none()) {
    p = py::reinterpret_borrow<py::array_t<T>>(grad_p);
    a.ps = rowspec_of(p, axis);
    a.grad_p = p.data();
  }
  a.inv_taus = per_row<T>(inv_taus);
  a.inv_tau = inverse_tau<T>(tau);
  run_kernel([&] { run(a); });
  return std::move(o);
}

void bind(py::module_& m) {
  m.def(
      "reinmax_backward",
      [](const py::array& grad_y, const py::array& logits, const py::array& y_hard,
         const py::object& grad_p, double tau, const py::object& inv_taus, int axis,
         const py::object& out) {
        return is_double(grad_y)
                   ? reinmax_impl<double>(grad_y, logits, y_hard, grad_p, tau, inv_taus, axis, out)
                   : reinmax_impl<float>(grad_y, logits, y_hard, grad_p, tau, inv_taus, axis, out);
      },
      py::arg("grad_y"), py::arg("logits"), py::arg("y_hard"), py::arg("grad_p"), py::arg("tau"),
      py::arg("inv_taus"), py::arg("axis"), py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/softmax.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

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

// The six sums of a row (16 lanes each, segments): S0 = sum(e0), St = sum(et),
// A = sum(g e0), B = sum(gp e0), C = sum(g et), H = sum(h g); e0 = exp(x - max),
// et = exp((x - max) / tau).
template <class T>
struct Sums {
  T s0 = 0, st = 0, a = 0, b = 0, c = 0, h = 0;
};

// The row buffers (padded to whole 16-element steps: x -inf, the others 0).
template <class T>
struct RowBufs {
  T *x, *g, *h, *p, *e0, *et;
};

// Pass 2 on [begin, end) (multiples of 16): e0 and et (stored), and their sums.
// kUnit: tau = 1 (et = e0); kGp: grad_p given.
template <bool kUnit, bool kGp, class T>
GS_INLINE Sums<T> exp_sums(const RowBufs<T>& r, int64_t begin, int64_t end, T max, T itau) {
  using V = Lane<T>;
  constexpr int W = kWidth<T>, kS = kLanes / W;
  V s0[kS] = {}, st[kS] = {}, va[kS] = {}, vb[kS] = {}, vc[kS] = {}, vh[kS] = {};
  for (int64_t i = begin; i < end; i += kLanes)
    for (int k = 0; k < kS; ++k) {
      const int64_t c = i + k * W;
      const V d = lane_load<V>(r.x + c) - max;
      const V g = lane_load<V>(r.g + c);
      const V e0 = vmath::exp_scaled_nonpos<0>(d);
      lane_store(r.e0 + c, e0);
      s0[k] = s0[k] + e0;
      va[k] = lanes::fma(g, e0, va[k]);
      if constexpr (kGp) vb[k] = lanes::fma(lane_load<V>(r.p + c), e0, vb[k]);
      vh[k] = lanes::fma(lane_load<V>(r.h + c), g, vh[k]);
      if constexpr (!kUnit) {
        // 1/tau = 0 (tau -> infinity): (-inf) * 0 is NaN, the limit's exp is 0
        const V t = d * itau;
        const V et = vmath::exp_scaled_nonpos<0>(
            lanes::select(t == t, t, lanes::splat<V>(-std::numeric_limits<T>::infinity())));
        lane_store(r.et + c, et);
        st[k] = st[k] + et;
        vc[k] = lanes::fma(g, et, vc[k]);
      }
    }
  auto total = [](const V(&v)[kS]) {
    T acc[kLanes];  // lane j of vector k is partial sum k * W + j
    std::memcpy(acc, v, sizeof acc);
    return tree_sum(acc);
  };
  Sums<T> s;
  s.s0 = total(s0);
  s.a = total(va);
  s.h = total(vh);
  if constexpr (kGp) s.b = total(vb);
  if constexpr (!kUnit) {
    s.st = total(st);
    s.c = total(vc);
  } else {
    s.st = s.s0;
    s.c = s.a;
  }
  return s;
}

// Pass 3 on the padded row: out = (et ct + h) (g - d1) + (e0 c0) (gp - g / 2 - d0).
template <bool kUnit, bool kGp, class T>
GS_INLINE void apply(const RowBufs<T>& r, T* o, int64_t n, T c0, T ct, T d0, T d1) {
  using V = Lane<T>;
  constexpr int W = kWidth<T>;
  for (int64_t i = 0; i < n; i += W) {
    const V g = lane_load<V>(r.g + i);
    const V p0 = lane_load<V>(r.e0 + i) * c0;
    const V pt = kUnit ? p0 : lane_load<V>(r.et + i) * ct;
    V u = g * T(-0.5);
    if constexpr (kGp) u = u + lane_load<V>(r.p + i);
    const V v = lanes::fma(pt + lane_load<V>(r.h + i), g - d1, p0 * (u - d0));
    lane_store(o + i, canonical(v));
  }
}

template <bool kUnit, bool kGp, class T>
void reinmax_row(const RowBufs<T>& r, T* o, int64_t padded, T max, T itau) {
  Sums<T> s = exp_sums<kUnit, kGp>(r, 0, std::min(padded, kSegment), max, itau);
  for (int64_t b = kSegment; b < padded; b += kSegment) {
    const Sums<T> t = exp_sums<kUnit, kGp>(r, b, std::min(padded, b + kSegment), max, itau);
    s.s0 = s.s0 + t.s0;
    s.st = s.st + t.st;
    s.a = s.a + t.a;
    s.b = s.b + t.b;
    s.c = s.c + t.c;
    s.h = s.h + t.h;
  }
  const T c0 = T(1) / s.s0, ct = T(1) / s.st;
  const T d1 = (s.c * ct + s.h) * T(0.5);
  const T d0 = (s.b - s.a * T(0.5)) * c0;
  apply<kUnit, kGp>(r, o, padded, c0, ct, d0, d1);
}

// Copies row r of an array into buf (contiguous), padding to `padded` with pad.
template <class T>
GS_INLINE void gather_row(const T* base, const RowSpec& s, int64_t r, T* buf, int64_t padded,
                          T pad) {
  const T* p = base + row_offset(s, r);
  if (s.step == 1)
    std::memcpy(buf, p, static_cast<size_t>(s.len) * sizeof(T));
  else
    for (int64_t c = 0; c < s.len; ++c) buf[c] = p[c * s.step];
  for (int64_t c = s.len; c < padded; ++c) buf[c] = pad;
}

template <class T>
struct ReinmaxOp {
  const ReinmaxArgs<T>& a;
  const int64_t len, padded;
  Scratch<T> scratch;  // per thread: x, g, h, gp, e0, et, out (padded elements each)
  explicit ReinmaxOp(const ReinmaxArgs<T>& args)
      : a(args), len(args.xs.len), padded((args.xs.len + kLanes - 1) / kLanes * kLanes) {}

  void row(int64_t r, int tid) const {
    T* base = scratch.data() + static_cast<int64_t>(tid) * 7 * padded;
    const RowBufs<T> b{base,
                       base + padded,
                       base + 2 * padded,
                       base + 3 * padded,
                       base + 4 * padded,
                       base + 5 * padded};
    T* ob = base + 6 * padded;
    gather_row(a.x, a.xs, r, b.x, padded, -std::numeric_limits<T>::infinity());
    gather_row(a.grad_y, a.gs, r, b.g, padded, T(0));
    gather_row(a.y_hard, a.hs, r, b.h, padded, T(0));
    if (a.grad_p) gather_row(a.grad_p, a.ps, r, b.p, padded, T(0));
    T* o = a.out + row_offset(a.os, r);
    const T max = row_max(b.x, 1, 0, len);
    const T itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    if (!(max > -std::numeric_limits<T>::infinity() && max < std::numeric_limits<T>::infinity()))
      return fill_nan(o, a.os.step, len);  // (a NaN in x makes the sums NaN below)
    if (itau == T(1))
      a.grad_p ? reinmax_row<true, true>(b, ob, padded, max, itau)
               : reinmax_row<true, false>(b, ob, padded, max, itau);
    else
      a.grad_p ? reinmax_row<false, true>(b, ob, padded, max, itau)
               : reinmax_row<false, false>(b, ob, padded, max, itau);
    if (a.os.step == 1)
      std::memcpy(o, ob, static_cast<size_t>(len) * sizeof(T));
    else
      for (int64_t c = 0; c < len; ++c) o[c * a.os.step] = ob[c];
  }
};

template <class T>
void reinmax_kernel(const ReinmaxArgs<T>& a) {
  ReinmaxOp<T> op(a);
  const int nthreads = threads_for(a.xs.nrows, a.xs.len);
  op.scratch.resize(static_cast<int64_t>(nthreads) * 7 * op.padded);
  for_rows(a.xs.nrows, nthreads, [&](int64_t r, int tid) { op.row(r, tid); });
}

}  // namespace

GS_KERNEL(ReinmaxArgs, reinmax_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
