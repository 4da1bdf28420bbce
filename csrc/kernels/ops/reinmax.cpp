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
#include "rows/short_rows.hpp"
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

// The 16 partial sums (lanes) of each of the six sums over one segment of a row.
template <class T>
struct LaneSums {
  alignas(64) T s0[kLanes], st[kLanes], a[kLanes], b[kLanes], c[kLanes], h[kLanes];
};

// A row's operands, contiguous: the caller's rows where they are (step 1) or copies,
// read up to the last whole 16-element step; the rest of the row goes through a Tail.
// e0, et (scratch) and o hold whole steps (o: the caller's row only for whole steps).
template <class T>
struct RowBufs {
  const T *x, *g, *h, *p;
  T *e0, *et, *o;
};

// The last partial step of a row (rem < 16 elements), padded (x -inf, the others 0:
// padded lanes add +0 to every sum) and computed in place of whole steps.
template <class T>
struct Tail {
  alignas(64) T x[kLanes], g[kLanes], h[kLanes], p[kLanes], o[kLanes];
  RowBufs<T> bufs;
  Tail(const RowBufs<T>& r, int64_t full, int64_t rem) {
    bufs = {x, g, h, p, r.e0 + full, r.et + full, o};
    if (rem == 0) return;  // not used
    for (int64_t j = 0; j < rem; ++j) {
      x[j] = r.x[full + j];
      g[j] = r.g[full + j];
      h[j] = r.h[full + j];
      p[j] = r.p ? r.p[full + j] : T(0);
    }
    for (int64_t j = rem; j < kLanes; ++j) {
      x[j] = -std::numeric_limits<T>::infinity();
      g[j] = h[j] = p[j] = T(0);
    }
  }
};

// The cases of 1/tau (a template argument): 1 (et = e0); in (0, 1) (t = (x - max) / tau
// is NaN only where x is NaN, and then the row is NaN through S0 whatever et is); else
// 0 (tau -> infinity, (-inf) * 0 = NaN: et = 0 there, the limit) or anything else.
enum TauCase { kTauOne, kTauFinite, kTauAny };

// The operands of the row this thread computes next (x, g, h, gp, and out, to be
// written), each where that row exists and is contiguous, else the current row's: read
// into the cache (all levels) while this row is computed, so that the memory traffic of a row
// overlaps the arithmetic of the one before (the hardware prefetchers stop at every
// 4 KiB page, about every row of 1000 float32).  Only a hint: no result depends on it.
template <class T>
struct NextRow {
  const T *x, *g, *h, *p;
  T* o;
};

// The cache lines of elements [i, i + 16) of n's rows (its copy in registers).
template <bool kGp, class T>
GS_INLINE void prefetch_step(const NextRow<T>& n, int64_t i) {
  for (size_t b = 0; b < kLanes * sizeof(T); b += 64) {
    GS_PREFETCH(reinterpret_cast<const char*>(n.x + i) + b, 0);
    GS_PREFETCH(reinterpret_cast<const char*>(n.g + i) + b, 0);
    GS_PREFETCH(reinterpret_cast<const char*>(n.h + i) + b, 0);
    if (kGp) GS_PREFETCH(reinterpret_cast<const char*>(n.p + i) + b, 0);
    GS_PREFETCH(reinterpret_cast<char*>(n.o + i) + b, 1);
  }
}

// Pass 2, the lanes [k W, k W + W) of every whole step [begin, end) of r, then (tail
// non-null) of the tail: e0 and et (stored), and those lanes' partial sums into s.
// One vector of each step at a time (AVX2: two loops over the segment, each with six
// accumulators, not one with twelve); both exps in one loop, which runs faster than
// a loop for each although its accumulators do not all fit in AVX2's 16 registers.
// kTau: see TauCase; kGp: grad_p given; kPf: prefetch the next row (n).
template <int kTau, bool kGp, bool kPf, class T>
GS_INLINE void exp_part(const RowBufs<T>& r, int64_t begin, int64_t end, const RowBufs<T>* tail,
                        int k, T max, T itau, const NextRow<T>& n, LaneSums<T>& s) {
  constexpr bool kUnit = kTau == kTauOne;
  using V = Lane<T>;
  constexpr int W = kWidth<T>;
  V s0 = {}, st = {}, va = {}, vb = {}, vc = {}, vh = {};
  auto run = [&](const RowBufs<T>& q, int64_t lo, int64_t hi, bool pf) GS_LAMBDA_INLINE {
    // the row's pointers in registers (the stores below may alias memory they sit in)
    const T *x = q.x + k * W, *g = q.g + k * W, *h = q.h + k * W, *p = q.p + (kGp ? k * W : 0);
    T *e0p = q.e0 + k * W, *etp = q.et + k * W;
    const NextRow<T> nr = n;
    for (int64_t i = lo; i < hi; i += kLanes) {
      if (kPf && pf) prefetch_step<kGp>(nr, i);
      const V d = lane_load<V>(x + i) - max;
      const V gv = lane_load<V>(g + i);
      const V e0 = vmath::exp_scaled_nonpos<0>(d);
      lane_store(e0p + i, e0);
      s0 = s0 + e0;
      va = lanes::fma(gv, e0, va);
      if constexpr (kGp) vb = lanes::fma(lane_load<V>(p + i), e0, vb);
      vh = lanes::fma(lane_load<V>(h + i), gv, vh);
      if constexpr (!kUnit) {
        // 1/tau = 0 (tau -> infinity): (-inf) * 0 is NaN, the limit's exp is 0
        V t = d * itau;
        if constexpr (kTau == kTauAny)
          t = lanes::select(t == t, t, lanes::splat<V>(-std::numeric_limits<T>::infinity()));
        const V et = vmath::exp_scaled_nonpos<0>(t);
        lane_store(etp + i, et);
        st = st + et;
        vc = lanes::fma(gv, et, vc);
      }
    }
  };
  run(r, begin, end, true);
  if (tail) {
    if (kPf) prefetch_step<kGp>(n, end);
    run(*tail, 0, kLanes, false);
  }
  auto put = [k](T* lanes16, const V& v) GS_LAMBDA_INLINE {
    lane_store(lanes16 + k * W, v);  // lane j of vector k is partial sum k W + j
  };
  put(s.s0, s0);
  put(s.a, va);
  put(s.h, vh);
  if constexpr (kGp) put(s.b, vb);
  if constexpr (!kUnit) {
    put(s.st, st);
    put(s.c, vc);
  }
}

// tree_sum (rows/common.hpp) of 16 partial sums, the same additions unrolled.
template <class T>
GS_INLINE T sum16(const T (&a)[kLanes]) {
  T b[8], c[4];
  for (int j = 0; j < 8; ++j) b[j] = a[j] + a[j + 8];
  for (int j = 0; j < 4; ++j) c[j] = b[j] + b[j + 4];
  return (c[0] + c[2]) + (c[1] + c[3]);
}

// Pass 2 on the segment [begin, end) of r (whole steps; the tail when non-null): e0 and
// et, and the segment's six sums (partial sums combined pairwise).
template <int kTau, bool kGp, class T>
GS_INLINE Sums<T> exp_sums(const RowBufs<T>& r, int64_t begin, int64_t end, const RowBufs<T>* tail,
                           T max, T itau, const NextRow<T>& n) {
  constexpr bool kUnit = kTau == kTauOne;
  constexpr int kS = kLanes / kWidth<T>;
  LaneSums<T> l;
  exp_part<kTau, kGp, true>(r, begin, end, tail, 0, max, itau, n, l);
  for (int k = 1; k < kS; ++k) exp_part<kTau, kGp, false>(r, begin, end, tail, k, max, itau, n, l);
  Sums<T> s;
  s.s0 = sum16(l.s0);
  s.a = sum16(l.a);
  s.h = sum16(l.h);
  if constexpr (kGp) s.b = sum16(l.b);
  if constexpr (!kUnit) {
    s.st = sum16(l.st);
    s.c = sum16(l.c);
  } else {
    s.st = s.s0;
    s.c = s.a;
  }
  return s;
}

// Pass 3 on [0, n) (whole steps): out = (et ct + h) (g - d1) + (e0 c0) (gp - g / 2 - d0).
template <int kTau, bool kGp, class T>
GS_INLINE void apply(const RowBufs<T>& r, int64_t n, T c0, T ct, T d0, T d1) {
  constexpr bool kUnit = kTau == kTauOne;
  using V = Lane<T>;
  constexpr int W = kWidth<T>;
  const T *g = r.g, *h = r.h, *p = r.p, *e0 = r.e0, *et = r.et;  // in registers
  T* o = r.o;
  for (int64_t i = 0; i < n; i += W) {
    const V gv = lane_load<V>(g + i);
    const V p0 = lane_load<V>(e0 + i) * c0;
    const V pt = kUnit ? p0 : lane_load<V>(et + i) * ct;
    V u = gv * T(-0.5);
    if constexpr (kGp) u = u + lane_load<V>(p + i);
    const V v = lanes::fma(pt + lane_load<V>(h + i), gv - d1, p0 * (u - d0));
    lane_store(o + i, canonical(v));
  }
}

// A row of len elements: passes 2 and 3, segment by segment for the sums; the last
// rem = len % 16 elements through a Tail, copied to r.o + full at the end.
template <int kTau, bool kGp, class T>
void reinmax_row(const RowBufs<T>& r, int64_t len, T max, T itau, const NextRow<T>& n) {
  const int64_t full = len - len % kLanes, rem = len - full;
  Tail<T> tail(r, full, rem);
  Sums<T> s;
  for (int64_t b = 0; b < len; b += kSegment) {
    const int64_t end = std::min(len, b + kSegment);
    const bool last = end == len && rem > 0;
    const Sums<T> t =
        exp_sums<kTau, kGp>(r, b, std::min(end, full), last ? &tail.bufs : nullptr, max, itau, n);
    if (b == 0) {
      s = t;
      continue;
    }
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
  apply<kTau, kGp>(r, full, c0, ct, d0, d1);
  if (rem) {
    apply<kTau, kGp>(tail.bufs, kLanes, c0, ct, d0, d1);
    std::memcpy(r.o + full, tail.o, static_cast<size_t>(rem) * sizeof(T));
  }
}

// Row r of an array, contiguous: in place when its step is 1, else copied into buf.
template <class T>
GS_INLINE const T* row_of(const T* base, const RowSpec& s, int64_t r, T* buf) {
  const T* p = base + row_offset(s, r);
  if (s.step == 1) return p;
  for (int64_t c = 0; c < s.len; ++c) buf[c] = p[c * s.step];
  return buf;
}

// Rows up to kPrefetchLen are prefetched (the next row's operands fit in L2 beside the
// current row's seven arrays; for rows of up to 1000 float32, in L1 too, which is where
// the prefetch puts them: timed against prefetching into L2 only (locality 2), 1.37x vs
// 1.42x the stored backward at (4096, 1000), equal at (1024, 4096); without the
// prefetch of out 1.49x).

template <class T>
struct ReinmaxOp {
  const ReinmaxArgs<T>& a;
  const int64_t len, padded;
  Scratch<T> scratch;  // per thread: x, g, h, gp, e0, et, out (padded elements each)
  explicit ReinmaxOp(const ReinmaxArgs<T>& args)
      : a(args), len(args.xs.len), padded((args.xs.len + kLanes - 1) / kLanes * kLanes) {}

  // Row r's operand (base, s) for NextRow: row r + 1 where it exists and is contiguous.
  template <class P>
  P* next(P* base, const RowSpec& s, int64_t r, P* current) const {
    const bool ok = base && s.step == 1 && r + 1 < s.nrows && len <= kPrefetchLen;
    return ok ? base + row_offset(s, r + 1) : current;
  }
  void row(int64_t r, int tid) const {
    T* base = scratch.data() + static_cast<int64_t>(tid) * 7 * padded;
    T* o = a.out + row_offset(a.os, r);
    const RowBufs<T> b{row_of(a.x, a.xs, r, base),
                       row_of(a.grad_y, a.gs, r, base + padded),
                       row_of(a.y_hard, a.hs, r, base + 2 * padded),
                       a.grad_p ? row_of(a.grad_p, a.ps, r, base + 3 * padded) : nullptr,
                       base + 4 * padded,
                       base + 5 * padded,
                       a.os.step == 1 ? o : base + 6 * padded};
    const NextRow<T> n{next(a.x, a.xs, r, b.x), next(a.grad_y, a.gs, r, b.g),
                       next(a.y_hard, a.hs, r, b.h), next(a.grad_p, a.ps, r, b.p),
                       next(a.out, a.os, r, b.o)};
    const T max = row_max(b.x, 1, 0, len);
    const T itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    if (!(max > -std::numeric_limits<T>::infinity() && max < std::numeric_limits<T>::infinity()))
      return fill_nan(o, a.os.step, len);  // (a NaN in x makes the sums NaN below)
    if (itau == T(1))
      a.grad_p ? reinmax_row<kTauOne, true>(b, len, max, itau, n)
               : reinmax_row<kTauOne, false>(b, len, max, itau, n);
    else if (itau > T(0) && itau < T(1))
      a.grad_p ? reinmax_row<kTauFinite, true>(b, len, max, itau, n)
               : reinmax_row<kTauFinite, false>(b, len, max, itau, n);
    else
      a.grad_p ? reinmax_row<kTauAny, true>(b, len, max, itau, n)
               : reinmax_row<kTauAny, false>(b, len, max, itau, n);
    if (a.os.step != 1)
      for (int64_t c = 0; c < len; ++c) o[c * a.os.step] = b.o[c];
  }
};

#ifdef GS_HAVE_VECTOR_EXT
// A group of short rows (rows/short_rows.hpp), one row per vector lane: the row path's
// operations in its order, per lane.  Element c goes to partial sum c % 16 (the row
// path's padded lanes add exact zeros), the partial sums combine as sum16 does, and
// every lane takes the tau case kTauAny: where 1/tau = 1 its et and sums are e0's bit for
// bit, and where 0 < 1/tau < 1 its NaN select changes only rows that are NaN anyway.
// The group is read whole before out is written (out may be grad_y itself).
template <class T>
void reinmax_short_group(const ReinmaxArgs<T>& a, int64_t r0, int64_t n) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  constexpr T inf = std::numeric_limits<T>::infinity();
  const int64_t len = a.xs.len;
  if (len == 0) return;
  alignas(64) T x[kShortMax * W], g[kShortMax * W], h[kShortMax * W], p[kShortMax * W];
  alignas(64) T e0[kShortMax * W], et[kShortMax * W];
  load_columns(a.x, a.xs, r0, n, len, -inf, x);
  load_columns(a.grad_y, a.gs, r0, n, len, T(0), g);
  load_columns(a.y_hard, a.hs, r0, n, len, T(0), h);
  if (a.grad_p) load_columns(a.grad_p, a.ps, r0, n, len, T(0), p);
  const V itau = row_lanes(a.inv_taus, 1, r0, n, a.inv_tau);
  V max = lanes::splat<V>(-inf);
  for (int64_t c = 0; c < len; ++c) {
    const V xc = lanes::load<V>(x + c * W);
    max = lanes::select(xc > max, xc, max);  // as row_max: NaN ignored
  }
  V s0[kLanes] = {}, st[kLanes] = {}, sa[kLanes] = {}, sb[kLanes] = {}, sc[kLanes] = {},
    sh[kLanes] = {};
  for (int64_t c = 0; c < len; ++c) {
    const int j = static_cast<int>(c % kLanes);
    const V d = lanes::load<V>(x + c * W) - max, gv = lanes::load<V>(g + c * W);
    const V e = vmath::exp_scaled_nonpos<0>(d);
    V t = d * itau;
    t = lanes::select(t == t, t, lanes::splat<V>(-inf));
    const V f = vmath::exp_scaled_nonpos<0>(t);
    lanes::store(e0 + c * W, e);
    lanes::store(et + c * W, f);
    s0[j] = s0[j] + e;
    sa[j] = lanes::fma(gv, e, sa[j]);
    if (a.grad_p) sb[j] = lanes::fma(lanes::load<V>(p + c * W), e, sb[j]);
    sh[j] = lanes::fma(lanes::load<V>(h + c * W), gv, sh[j]);
    st[j] = st[j] + f;
    sc[j] = lanes::fma(gv, f, sc[j]);
  }
  const V c0 = T(1) / sum16(s0), ct = T(1) / sum16(st);
  const V d1 = (sum16(sc) * ct + sum16(sh)) * T(0.5);
  const V d0 = (sum16(sb) - sum16(sa) * T(0.5)) * c0;
  const auto ok = (max > -inf) & (max < inf);  // else the row is NaN
  for (int64_t c = 0; c < len; ++c) {
    const V gv = lanes::load<V>(g + c * W);
    const V p0 = lanes::load<V>(e0 + c * W) * c0;
    const V pt = lanes::load<V>(et + c * W) * ct;
    V u = gv * T(-0.5);
    if (a.grad_p) u = u + lanes::load<V>(p + c * W);
    const V v = lanes::fma(pt + lanes::load<V>(h + c * W), gv - d1, p0 * (u - d0));
    lanes::store(g + c * W, lanes::select(ok, canonical(v), lanes::splat<V>(kNaN<T>)));
  }
  store_columns(g, a.out, a.os, r0, n, len);
}
#endif

template <class T>
void reinmax_kernel(const ReinmaxArgs<T>& a) {
  if (a.xs.nrows == 0 || a.xs.len == 0) return;  // nothing to compute (as run_schedule)
#ifdef GS_HAVE_VECTOR_EXT
  if (use_short_rows<T>(a.xs.len)) {
    for_groups<T>(a.xs.nrows, a.xs.len,
                  [&](int64_t r0, int64_t n) { reinmax_short_group(a, r0, n); });
    return;
  }
#endif
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
