// Op "bernoulli": the relaxed Bernoulli sample and its gradient, elementwise.
//
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Relaxed Bernoulli, elementwise over rows of the last axis: v = x + L (logistic noise),
// y_soft = sigmoid(v / tau), y = [v > 0] (hard) or y_soft.  inv_tau: per element, with
// its own (broadcasting) spec.
template <class T>
struct BernoulliArgs {
  const T* x = nullptr;
  RowSpec xs;
  T* y = nullptr;
  RowSpec ys;
  T* y_soft = nullptr;  // hard only, or null
  RowSpec ss;
  const T* inv_tau = nullptr;
  RowSpec ts;
  bool hard = false;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// out = grad_y * y_soft * (1 - y_soft) / tau, elementwise (inv_tau per element).
template <class T>
struct BernoulliBackwardArgs {
  const T* grad_y = nullptr;
  RowSpec gs;
  const T* y_soft = nullptr;
  RowSpec ss;
  T* out = nullptr;
  RowSpec os;
  const T* inv_tau = nullptr;
  RowSpec ts;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// inv_tau: 1/tau per element, an array of T of logits' shape (a broadcast view).
template <class T>
py::object bernoulli_impl(const py::array& logits, const py::array& inv_tau, bool hard,
                          const py::object& rng, const py::object& out, bool return_soft) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  auto t = py::reinterpret_borrow<py::array_t<T>>(inv_tau);
  py::array_t<T> y = result_like<T>(logits, out);
  py::array_t<T> y_soft;
  const bool separate_soft = hard && return_soft;
  if (separate_soft) y_soft = result_like<T>(logits, py::none());
  const int axis = static_cast<int>(x.ndim()) - 1;
  BernoulliArgs<T> a;
  a.xs = rowspec_of(x, axis);
  a.ys = rowspec_of(y, axis);
  a.ts = rowspec_of(t, axis);
  if (separate_soft) a.ss = rowspec_of(y_soft, axis);
  a.x = x.data();
  a.y = y.mutable_data();
  a.y_soft = separate_soft ? y_soft.mutable_data() : nullptr;
  a.inv_tau = t.data();
  a.hard = hard;
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  if (!return_soft) return std::move(y);
  if (!hard) return py::make_tuple(y, y);
  return py::make_tuple(y, y_soft);
}

template <class T>
py::object bernoulli_backward_impl(const py::array& grad_y, const py::array& y_soft,
                                   const py::array& inv_tau, const py::object& out) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto s = py::reinterpret_borrow<py::array_t<T>>(y_soft);
  auto t = py::reinterpret_borrow<py::array_t<T>>(inv_tau);
  py::array_t<T> o = result_like<T>(grad_y, out);
  const int axis = static_cast<int>(g.ndim()) - 1;
  BernoulliBackwardArgs<T> a;
  a.gs = rowspec_of(g, axis);
  a.ss = rowspec_of(s, axis);
  a.os = rowspec_of(o, axis);
  a.ts = rowspec_of(t, axis);
  a.grad_y = g.data();
  a.y_soft = s.data();
  a.inv_tau = t.data();
  a.out = o.mutable_data();
  run_kernel([&] { run(a); });
  return std::move(o);
}

void bind(py::module_& m) {
  m.def(
      "relaxed_bernoulli",
      [](const py::array& logits, const py::array& inv_tau, bool hard, const py::object& rng,
         const py::object& out, bool return_soft) {
        return is_double(logits)
                   ? bernoulli_impl<double>(logits, inv_tau, hard, rng, out, return_soft)
                   : bernoulli_impl<float>(logits, inv_tau, hard, rng, out, return_soft);
      },
      py::arg("logits"), py::arg("inv_tau"), py::arg("hard"), py::arg("rng"), py::arg("out"),
      py::arg("return_soft"));
  m.def(
      "relaxed_bernoulli_backward",
      [](const py::array& grad_y, const py::array& y_soft, const py::array& inv_tau,
         const py::object& out) {
        return is_double(grad_y) ? bernoulli_backward_impl<double>(grad_y, y_soft, inv_tau, out)
                                 : bernoulli_backward_impl<float>(grad_y, y_soft, inv_tau, out);
      },
      py::arg("grad_y"), py::arg("y_soft"), py::arg("inv_tau"), py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/pass1.hpp"
#include "rows/schedule.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// One element (lanes V or a scalar): v = x + L, z = v / tau,
// soft = sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) otherwise, e = exp(-|z|)
// (accurate in both tails, exact 0 and 1 at -inf and +inf); hard = 1 where v > 0,
// 0 where v <= 0, the canonical NaN where v is NaN.  z is NaN exactly where v is NaN or
// where v is +-inf and 1/tau rounded to 0 (inf * 0); there the soft sample is the hard
// one: NaN, or the tau -> infinity limit of sigmoid(+-inf / tau), 1 and 0.
template <class V, class S = typename lanes::Traits<V>::Scalar>
GS_INLINE void bernoulli_element(V x, V noise, V inv_tau, V& soft, V& hard) {
  using lanes::select;
  using lanes::splat;
  const V v = x + noise;
  const V z = v * inv_tau;
  // -|z| <= 0 (or NaN): exp_scaled_nonpos gives exp's bits there.  One division: the
  // quotient of the selected numerator is the selected quotient.
  // Where e <= 2^-24 (2^-53), 1 + e rounds to 1 and the quotient is its numerator: taken
  // directly (the same bits), so that no division sees a subnormal e (a microcode
  // assist on many x86 cores; a small tau puts many e there).
  const V e = vmath::exp_scaled_nonpos<0>(select(z > S(0), -z, z));
  const auto one = e <= S(sizeof(S) == 4 ? 0x1p-24 : 0x1p-53);
  const V d = S(1) + e;
  const V n = select(z >= S(0), splat<V>(S(1)), e);
  hard = select(v > S(0), splat<V>(S(1)), select(v == v, splat<V>(S(0)), splat<V>(kNaN<S>)));
  soft = select(z == z, select(one, n, select(one, splat<V>(S(1)), n) / d), hard);
}

// n results from element c0 on, contiguous in src, to dst (step).
template <class T>
GS_INLINE void put(const T* src, T* dst, int64_t step, int64_t c0, int64_t n) {
  if (!dst) return;
  if (step == 1) return (void)std::memcpy(dst + c0, src, static_cast<size_t>(n) * sizeof(T));
  for (int64_t j = 0; j < n; ++j) dst[(c0 + j) * step] = src[j];
}

template <class T>
struct BernoulliOp : Elementwise<BernoulliOp<T>> {
  static constexpr bool kShortRows = true;
  const BernoulliArgs<T>& a;
  explicit BernoulliOp(const BernoulliArgs<T>& args)
      : Elementwise<BernoulliOp<T>>(args.xs.len), a(args) {}

  // Where row r's results go: y gets the hard or the soft sample, y_soft (hard with
  // return_soft) the soft one.
  struct Dest {
    T* hard = nullptr;
    int64_t hstep = 0;
    T* soft = nullptr;
    int64_t sstep = 0;
  };
  Dest dest(int64_t r) const {
    Dest d;
    T* y = a.y + row_offset(a.ys, r);
    if (a.hard) {
      d.hard = y;
      d.hstep = a.ys.step;
      if (a.y_soft) {
        d.soft = a.y_soft + row_offset(a.ss, r);
        d.sstep = a.ss.step;
      }
    } else {
      d.soft = y;
      d.sstep = a.ys.step;
    }
    return d;
  }
#ifdef GS_HAVE_VECTOR_EXT
  // A group of short rows, one row per vector lane (rows/short_rows.hpp): x, 1/tau and
  // the noise in columns, each element as the row path computes it.
  void short_group(int64_t r0, int64_t n) const {
    using V = Vec<T>;
    constexpr int W = kW<T>;
    const int64_t len = a.xs.len;
    ShortNoise<T> noise;
    const T* g = noise.fill_columns(a.key, a.first_row, r0, n, len, Draw::logistic);
    alignas(64) T x[kShortMax * W], t[kShortMax * W], hard[kShortMax * W];
    load_columns(a.x, a.xs, r0, n, len, T(0), x);
    load_columns(a.inv_tau, a.ts, r0, n, len, T(1), t);
    for (int64_t c = 0; c < len; ++c) {
      V sv, hv;
      bernoulli_element<V>(lanes::load<V>(x + c * W), lanes::load<V>(g + c * W),
                           lanes::load<V>(t + c * W), sv, hv);
      lanes::store(x + c * W, sv);
      lanes::store(hard + c * W, hv);
    }
    if (a.hard) {
      store_columns(hard, a.y, a.ys, r0, n, len);
      if (a.y_soft) store_columns(x, a.y_soft, a.ss, r0, n, len);
    } else {
      store_columns(x, a.y, a.ys, r0, n, len);
    }
  }
#endif
#ifdef GS_HAVE_PARTIAL
  // Contiguous x and results, 1/tau contiguous or one value: the noise computed from the
  // row's blocks in the loop, results stored in place, the last partial vector masked.
  bool direct(const Dest& d) const {
    return a.xs.step == 1 && a.ts.step <= 1 && (!d.hard || d.hstep == 1) &&
           (!d.soft || d.sstep == 1);
  }
  void direct_part(int64_t r, int64_t begin, int64_t end, const Dest& d) const {
    using V = Vec<T>;
    using U = lanes::UInt<V>;
    constexpr int W = kW<T>;
    constexpr int wpe = words_per_element<T>();
    alignas(64) uint32_t words[kChunk * wpe];
    const T* xr = a.x + row_offset(a.xs, r);
    const T* tr = a.inv_tau + row_offset(a.ts, r);
    const bool per_element = a.ts.step == 1;
    const V t0 = lanes::splat<V>(tr[0]);
    const philox::RowBlocks blocks(a.key, a.first_row + static_cast<uint64_t>(r));
    int64_t c0 = begin;  // the chunk's first element, its words in `words`
    auto one = [&](int64_t c, V xv, V tv, int64_t n) {
      V soft, hard;
      const V g = bits_to_logistic<V>(lanes::load_bits<U>(words + (c - c0) * wpe));
      bernoulli_element<V>(xv, g, tv, soft, hard);
      if (n == W) {
        if (d.hard) lanes::store(d.hard + c, hard);
        if (d.soft) lanes::store(d.soft + c, soft);
      } else {
        if (d.hard) lanes::store_first(d.hard + c, hard, n);
        if (d.soft) lanes::store_first(d.soft + c, soft, n);
      }
    };
    for (; c0 < end; c0 += kChunk) {
      const int64_t n = std::min(kChunk, end - c0);
      chunk_words<T>(blocks, c0, n, words);
      const int64_t full = c0 + n - n % W;
      int64_t c = c0;
      for (; c < full; c += W)
        one(c, lanes::load<V>(xr + c), per_element ? lanes::load<V>(tr + c) : t0, W);
      if (c < c0 + n) {
        const int64_t m = c0 + n - c;  // padded lanes: x 0, 1/tau 1 (never stored)
        one(c, lanes::load_first(xr + c, m, T(0)),
            per_element ? lanes::load_first(tr + c, m, T(1)) : t0, m);
      }
    }
  }
#endif
  void row_part(int64_t r, int64_t begin, int64_t end) const {
    const Dest d = dest(r);
#ifdef GS_HAVE_PARTIAL
    if (direct(d)) return direct_part(r, begin, end, d);
#endif
    ChunkBuffers<T> buf;  // g: the noise, x: the logits, v: the soft sample
    alignas(64) T tb[kChunk + kLanes];
    alignas(64) T hb[kChunk + kLanes];
    const T* xr = a.x + row_offset(a.xs, r);
    const T* tr = a.inv_tau + row_offset(a.ts, r);
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int64_t n = std::min(kChunk, end - c0);
      noise_chunk(a.key, q, c0, n, buf.words, buf.g, Noise::logistic);
      const T* xc = chunk_x(xr, a.xs.step, c0, n, buf.x);
      const T* tc = a.ts.step == 0 ? nullptr : chunk_x(tr, a.ts.step, c0, n, tb);
      int64_t i = 0;
#ifdef GS_HAVE_VECTOR_EXT
      using V = Vec<T>;
      const V t0 = lanes::splat<V>(tr[0]);
      for (; i < n; i += kW<T>) {
        V soft, hard;
        bernoulli_element<V>(lanes::load<V>(xc + i), lanes::load<V>(buf.g + i),
                             tc ? lanes::load<V>(tc + i) : t0, soft, hard);
        lanes::store(buf.v + i, soft);
        lanes::store(hb + i, hard);
      }
#endif
      for (; i < n; ++i) bernoulli_element<T>(xc[i], buf.g[i], tc ? tc[i] : tr[0], buf.v[i], hb[i]);
      put(hb, d.hard, d.hstep, c0, n);
      put(buf.v, d.soft, d.sstep, c0, n);
    }
  }
};

// out = ((grad_y * s) * (1 - s)) / tau; element c is read before it is written, so out
// may be grad_y or y_soft itself.
template <class T>
struct BernoulliBackwardOp : Elementwise<BernoulliBackwardOp<T>> {
  const BernoulliBackwardArgs<T>& a;
  explicit BernoulliBackwardOp(const BernoulliBackwardArgs<T>& args)
      : Elementwise<BernoulliBackwardOp<T>>(args.gs.len), a(args) {}

  void row_part(int64_t r, int64_t begin, int64_t end) const {
    const RowSpec &gs = a.gs, &ss = a.ss, &os = a.os, &ts = a.ts;
    const T* g = a.grad_y + row_offset(gs, r);
    const T* s = a.y_soft + row_offset(ss, r);
    const T* t = a.inv_tau + row_offset(ts, r);
    T* o = a.out + row_offset(os, r);
    int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
    if (gs.step == 1 && ss.step == 1 && os.step == 1 && (ts.step == 1 || ts.step == 0)) {
      using V = Vec<T>;
      for (; c + kW<T> <= end; c += kW<T>) {
        const V sv = lanes::load<V>(s + c);
        const V tv = ts.step ? lanes::load<V>(t + c) : lanes::splat<V>(t[0]);
        const V gv = lanes::load<V>(g + c);
#if defined(GS_EXACT_TINY)
        // A y_soft below 2^-60 (a small tau's tails) may make a product subnormal: those
        // vectors multiply through vmath::mul_exact (the same bits, without the assists).
        if constexpr (sizeof(T) == 4)
          if (lanes::any_set(sv < T(0x1p-60))) {
            using vmath::mul_exact;
            const V r = mul_exact(mul_exact(mul_exact(gv, sv), T(1) - sv), tv);
            lanes::store(o + c, canonical(r));
            continue;
          }
#endif
        lanes::store(o + c, canonical(((gv * sv) * (T(1) - sv)) * tv));
      }
    }
#endif
    for (; c < end; ++c) {
      const T sv = s[c * ss.step];
      o[c * os.step] = canonical(((g[c * gs.step] * sv) * (T(1) - sv)) * t[c * ts.step]);
    }
  }
};

template <class T>
void bernoulli_kernel(const BernoulliArgs<T>& a) {
  BernoulliOp<T> op(a);
  run_schedule<T>(op, a.xs.nrows, a.xs.len);
}

template <class T>
void bernoulli_backward_kernel(const BernoulliBackwardArgs<T>& a) {
  BernoulliBackwardOp<T> op(a);
  run_schedule<T>(op, a.gs.nrows, a.gs.len);
}

}  // namespace

GS_KERNEL(BernoulliArgs, bernoulli_kernel)
GS_KERNEL(BernoulliBackwardArgs, bernoulli_backward_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
