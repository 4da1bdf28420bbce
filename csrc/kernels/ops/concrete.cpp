// Op "concrete": the Concrete (relaxed one-hot) log-density of samples.  Row by row,
// no noise.
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// The Concrete log-density of each row (see docs/contract.md): with l = log y (or y itself when
// log_space) and s = x - tau l,  out[r] = cst + sum(s) - K logsumexp(s)
// - (log_space ? 0 : sum(l)), cst = lgamma(K) + (K-1) log tau (computed by the caller
// in float64).  tau and cst: one per row (tau_step 1) or one for all (tau_step 0);
// out: one per row, contiguous.  (Rows with large s are computed again with s shifted
// by a constant, which leaves the value unchanged; see concrete_shifted.)
template <class T>
struct ConcreteArgs {
  const T* y = nullptr;
  RowSpec ys;
  const T* x = nullptr;
  RowSpec xs;
  const T* tau = nullptr;
  const T* cst = nullptr;
  int64_t tau_step = 0;
  bool log_space = false;
  T* out = nullptr;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// y and logits: arrays of one shape (broadcast views); tau: one per row, or one value
// (tau_step 0).  Returns one log-density per row, of the batch shape.
template <class T>
py::object concrete_impl(const py::array& y, const py::array& logits, const py::array& tau,
                         const py::array& cst, int64_t tau_step, bool log_space, int axis) {
  auto yy = py::reinterpret_borrow<py::array_t<T>>(y);
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  auto t = py::reinterpret_borrow<py::array_t<T>>(tau);
  auto c = py::reinterpret_borrow<py::array_t<T>>(cst);
  py::array_t<T> out(batch_shape(y, axis));
  ConcreteArgs<T> a;
  a.ys = rowspec_of(yy, axis);
  a.xs = rowspec_of(x, axis);
  a.y = yy.data();
  a.x = x.data();
  a.tau = t.data();
  a.cst = c.data();
  a.tau_step = tau_step;
  a.log_space = log_space;
  a.out = out.mutable_data();
  run_kernel([&] { run(a); });
  return std::move(out);
}

void bind(py::module_& m) {
  m.def(
      "concrete_log_prob",
      [](const py::array& y, const py::array& logits, const py::array& tau, const py::array& cst,
         int64_t tau_step, bool log_space, int axis) {
        return is_double(y) ? concrete_impl<double>(y, logits, tau, cst, tau_step, log_space, axis)
                            : concrete_impl<float>(y, logits, tau, cst, tau_step, log_space, axis);
      },
      py::arg("y"), py::arg("logits"), py::arg("tau"), py::arg("cst"), py::arg("tau_step"),
      py::arg("log_space"), py::arg("axis"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/schedule.hpp"
#include "rows/softmax.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// log(y) for any y (user data): vmath::log takes positive normal numbers only, so
// subnormals are scaled by 2^k first (k = 24 / 54, which makes them normal) and k ln 2
// taken off after; 0 gives -inf, +inf gives +inf, negatives and NaN give NaN.
template <class V>
GS_INLINE V log_any(V y) {
  using S = typename lanes::Traits<V>::Scalar;
  using lanes::select;
  using lanes::splat;
  constexpr S kScale = sizeof(S) == 4 ? S(0x1p24) : S(0x1p54);
  constexpr S kLogScale = sizeof(S) == 4 ? S(16.635532333438687) : S(37.42994775023705);
  constexpr S inf = std::numeric_limits<S>::infinity();
  const auto small = y < std::numeric_limits<S>::min();
  V l = vmath::log(select(small, y * kScale, y));
  l = select(small, l - kLogScale, l);
  l = select(y == S(0), splat<V>(-inf), l);
  l = select(y == inf, splat<V>(inf), l);
  return select((y < S(0)) | (y != y), splat<V>(std::numeric_limits<S>::quiet_NaN()), l);
}

// Pass 1 over elements [begin, end) of a row: s = x - tau l (l = log y, or y), or
// s = x - tau (l - lmin) when kShift (see concrete_shifted), stored contiguously in s_out
// (the row's element 0); the max of s; returns sum(s) and sets sum_l, each in 16 partial
// sums (element c in partial (c - begin) % 16).
template <bool kShift, class T>
T concrete_pass1(const T* y, int64_t ystep, const T* x, int64_t xstep, T tau, bool log_space,
                 int64_t begin, int64_t end, T* s_out, T& max, T& sum_l, T lmin) {
  T acc_s[kLanes] = {}, acc_l[kLanes] = {};
  auto one = [&](auto yv, auto xv, auto& ss, auto& ll, auto& mx) {
    const auto l = log_space ? yv : log_any(yv);
    const auto sv = kShift ? xv - tau * (l - lmin) : xv - tau * l;
    ss = ss + sv;
    ll = ll + l;
    mx = lanes::select(sv > mx, sv, mx);
    return sv;
  };
  int64_t c = begin;
  T m = -std::numeric_limits<T>::infinity();
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1 && xstep == 1) {
    using V = Vec<T>;
    V vs[kSub<T>] = {}, vl[kSub<T>] = {};
    V vm = lanes::splat<V>(m);
    for (; c + kLanes <= end; c += kLanes)
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = c + k * kW<T>;
        lanes::store(s_out + o,
                     one(lanes::load<V>(y + o), lanes::load<V>(x + o), vs[k], vl[k], vm));
      }
#ifdef GS_HAVE_PARTIAL
    // The last, partial step (short rows: all of it), its lanes past the row masked off:
    // they add +0 to both sums (which are never -0) and leave the max, so the partial
    // sums are the scalar loop's below, element for element.
    for (int k = 0; k < kSub<T> && c + k * kW<T> < end; ++k) {
      const int64_t o = c + k * kW<T>, nk = std::min<int64_t>(end - o, kW<T>);
      lanes::Int<V> live;
      for (int j = 0; j < kW<T>; ++j) live[j] = j < nk ? -1 : 0;
      const V yv = lanes::load_first(y + o, nk, log_space ? T(0) : T(1));
      V l = log_space ? yv : log_any(yv);
      V sv = kShift ? lanes::load_first(x + o, nk, T(0)) - tau * (l - lmin)
                    : lanes::load_first(x + o, nk, T(0)) - tau * l;
      sv = lanes::select(live, sv, V{});
      l = lanes::select(live, l, V{});
      vs[k] = vs[k] + sv;
      vl[k] = vl[k] + l;
      vm = lanes::select(live & (sv > vm), sv, vm);
      lanes::store_first(s_out + o, sv, nk);
    }
    c = end;
#endif
    spill<T>(vs, acc_s);
    spill<T>(vl, acc_l);
    for (int j = 0; j < kW<T>; ++j) m = std::max(m, vm[j]);  // NaN: caught by the sum
  }
#endif
  for (; c < end; ++c) {
    const int64_t j = (c - begin) % kLanes;
    s_out[c] = one(y[c * ystep], x[c * xstep], acc_s[j], acc_l[j], m);
  }
  max = m;
  sum_l = tree_sum(acc_l);
  return tree_sum(acc_s);
}

// The value of one row: cst + sum(s) - K logsumexp(s) - (log_space ? 0 : sum(l)), with
// s as concrete_pass1 computes it; s is the row's scratch, max gets the max of s.
template <bool kShift, class T>
T concrete_row(const T* yr, int64_t ystep, const T* xr, int64_t xstep, int64_t len, T t, T cst,
               bool log_space, T* s, T& max, T lmin = T(0)) {
  T sum_s = T(0), sum_l = T(0);
  max = -std::numeric_limits<T>::infinity();
  for (int64_t b = 0; b < len; b += kSegment) {
    T mx, sl;
    const T ss = concrete_pass1<kShift>(yr, ystep, xr, xstep, t, log_space, b,
                                        std::min(len, b + kSegment), s, mx, sl, lmin);
    sum_s = b == 0 ? ss : sum_s + ss;
    sum_l = b == 0 ? sl : sum_l + sl;
    max = std::max(max, mx);
  }
  // A +inf s (a zero y: the boundary of the simplex, where the density's limit depends
  // on tau) or only -inf s has no value, like NumPy's formula's inf - inf: NaN.
  if (!std::isfinite(max)) return kNaN<T>;
  // logsumexp(s) = max + log(sum(exp(s - max)))
  T sum_e = exp_sum<false>(s, 0, std::min(len, kSegment), max, T(1));
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum_e = sum_e + exp_sum<false>(s, b, std::min(len, b + kSegment), max, T(1));
  const T lse = max + vmath::log(sum_e);
  T res = cst + sum_s - T(len) * lse;
  if (!log_space) res = res - sum_l;
  return canonical(res);
}

// Large s.  With a large tau (or tiny y), s = x - tau l is dominated by -tau l: x and cst
// are rounded away next to it, and the huge terms of sum(s) and K logsumexp(s), which
// cancel where y is near uniform, leave only their rounding errors; at a huge tau, tau l
// overflows (s = +inf) or the sums do (inf - inf), and the row is NaN although every y is
// positive and finite and the density is finite.  sum(s) - K logsumexp(s) does not
// change when every s is shifted by the same amount, so such a row (max s above
// kConcreteBig, or a NaN value) is computed again with s = x - tau (l - lmin), lmin the
// least log y: s <= x cannot overflow upwards (overflowing downwards gives -inf, a
// density below the smallest number), and is near x where y is near uniform.  Rows whose
// NaN is the contract's (a zero or NaN y, a NaN or +inf logit, only -inf s) stay NaN.
// Other rows are computed as before, bit for bit, at no extra cost.
template <class T>
constexpr T kConcreteBig = T(64);

template <class T>
GS_COLD T concrete_shifted(const T* yr, int64_t ystep, const T* xr, int64_t xstep, int64_t len, T t,
                           T cst, bool log_space, T* s) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  T lmin = inf;
  for (int64_t c = 0; c < len; ++c) {
    const T l = log_space ? yr[c * ystep] : log_any(yr[c * ystep]);
    const T xc = xr[c * xstep];
    if (l != l || l == -inf || xc != xc || xc == inf) return kNaN<T>;
    lmin = std::min(lmin, l);
  }
  if (lmin == inf) return kNaN<T>;  // every l is +inf: no s is finite
  T max;
  return concrete_row<true>(yr, ystep, xr, xstep, len, t, cst, log_space, s, max, lmin);
}

// Row by row (each row needs its scratch for s), and short rows a group at a time.
template <class T>
struct ConcreteOp : Schedule {
  const ConcreteArgs<T>& a;
  const int64_t len;
  Scratch<T> scratch;  // per thread: s of the row
  explicit ConcreteOp(const ConcreteArgs<T>& args) : a(args), len(args.ys.len) {}

#ifdef GS_HAVE_VECTOR_EXT
  // Short rows (rows/short_rows.hpp), one row per vector lane: concrete_row's operations
  // in its order (element c in partial sum c % 16, the pairwise tree; the max's order
  // can differ only in the sign of a zero maximum, which a tie makes irrelevant), and
  // the rows concrete_row leaves NaN or large go to concrete_shifted as in row().
  static constexpr bool kShortRows = true;
  void short_group(int64_t r0, int64_t n) const {
    using V = Vec<T>;
    constexpr int W = kW<T>;
    alignas(64) T y[kShortMax * W], x[kShortMax * W];
    load_columns(a.y, a.ys, r0, n, len, a.log_space ? T(0) : T(1), y);
    load_columns(a.x, a.xs, r0, n, len, T(0), x);
    const V tau = row_lanes(a.tau, a.tau_step, r0, n, a.tau[r0 * a.tau_step]);
    const V cst = row_lanes(a.cst, a.tau_step, r0, n, a.cst[r0 * a.tau_step]);
    V ss[kLanes] = {}, sl[kLanes] = {}, se[kLanes] = {};
    V max = lanes::splat<V>(-std::numeric_limits<T>::infinity());
    for (int64_t c = 0; c < len; ++c) {
      const int j = static_cast<int>(c % kLanes);
      const V yv = lanes::load<V>(y + c * W);
      const V l = a.log_space ? yv : log_any(yv);
      const V sv = lanes::load<V>(x + c * W) - tau * l;
      ss[j] = ss[j] + sv;
      sl[j] = sl[j] + l;
      max = lanes::select(sv > max, sv, max);
      lanes::store(x + c * W, sv);
    }
    for (int64_t c = 0; c < len; ++c) {
      const int j = static_cast<int>(c % kLanes);
      se[j] = se[j] + vmath::exp_scaled_nonpos<0>((lanes::load<V>(x + c * W) - max) * T(1));
    }
    const V lse = max + vmath::log(tree_sum(se));
    V res = cst + tree_sum(ss) - T(len) * lse;
    if (!a.log_space) res = res - tree_sum(sl);
    res = canonical(res);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = r0 + i;
      T v = res[i];
      if (!std::isfinite(max[i]) || v != v || max[i] > kConcreteBig<T>) {
        v = concrete_shifted(a.y + row_offset(a.ys, r), a.ys.step, a.x + row_offset(a.xs, r),
                             a.xs.step, len, tau[i], cst[i], a.log_space, x);
      }
      a.out[r] = v;
    }
  }
#endif

  void begin_rows(int nthreads) { scratch.resize(static_cast<int64_t>(nthreads) * len); }
  void row(int64_t r, int tid) const {
    const RowSpec &ys = a.ys, &xs = a.xs;
    T* s = scratch.data() + static_cast<int64_t>(tid) * len;
    const T* yr = a.y + row_offset(ys, r);
    const T* xr = a.x + row_offset(xs, r);
    const T t = a.tau[r * a.tau_step];
    const T c = a.cst[r * a.tau_step];
    T max;
    T res = concrete_row<false>(yr, ys.step, xr, xs.step, len, t, c, a.log_space, s, max);
    if (res != res || max > kConcreteBig<T>)
      res = concrete_shifted(yr, ys.step, xr, xs.step, len, t, c, a.log_space, s);
    a.out[r] = res;
  }
};

template <class T>
void concrete_kernel(const ConcreteArgs<T>& a) {
  ConcreteOp<T> op(a);
  run_schedule<T>(op, a.ys.nrows, a.ys.len);
}

}  // namespace

GS_KERNEL(ConcreteArgs, concrete_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
