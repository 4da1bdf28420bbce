// Op "backward": the gradient of the Gumbel-Softmax soft sample.  Compiled once per
// SIMD target.
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments: BackwardArgs, in softmax_args.hpp (types only) -----
#include "softmax_args.hpp"

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

template <class T>
py::object backward_impl(const py::array& grad_y, const py::array& y_soft, double tau,
                         const py::object& inv_taus, int axis, const py::object& out) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto s = py::reinterpret_borrow<py::array_t<T>>(y_soft);
  py::array_t<T> o = result_like<T>(grad_y, out);
  BackwardArgs<T> a;
  a.gs = rowspec_of(g, axis);
  a.ss = rowspec_of(s, axis);
  a.os = rowspec_of(o, axis);
  a.grad_y = g.data();
  a.y_soft = s.data();
  a.out = o.mutable_data();
  a.inv_taus = per_row<T>(inv_taus);
  a.inv_tau = inverse_tau<T>(tau);
  run_kernel([&] { run(a); });
  return std::move(o);
}

// The backward of the soft sample recomputed from logits (see BackwardArgs::x).
template <class T>
py::object recompute_impl(const py::array& grad_y, const py::array& logits, double tau,
                          const py::object& inv_taus, int axis, const py::object& rng,
                          const py::object& out, int round_soft) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  py::array_t<T> o = result_like<T>(grad_y, out);
  BackwardArgs<T> a;
  a.gs = rowspec_of(g, axis);
  a.xs = rowspec_of(x, axis);
  a.os = rowspec_of(o, axis);
  a.grad_y = g.data();
  a.x = x.data();
  a.out = o.mutable_data();
  a.inv_taus = per_row<T>(inv_taus);
  a.inv_tau = inverse_tau<T>(tau);
  a.round_soft = sizeof(T) == 4 ? round_soft : 0;
  // Rows only once everything else has succeeded: a failed call consumes none.
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(o);
}

void bind(py::module_& m) {
  m.def(
      "gumbel_softmax_backward_recompute",
      [](const py::array& grad_y, const py::array& logits, double tau, const py::object& inv_taus,
         int axis, const py::object& rng, const py::object& out, int round_soft) {
        return is_double(grad_y) ? recompute_impl<double>(grad_y, logits, tau, inv_taus, axis, rng,
                                                          out, round_soft)
                                 : recompute_impl<float>(grad_y, logits, tau, inv_taus, axis, rng,
                                                         out, round_soft);
      },
      py::arg("grad_y"), py::arg("logits"), py::arg("tau"), py::arg("inv_taus"), py::arg("axis"),
      py::arg("rng"), py::arg("out"), py::arg("round_soft"));
  m.def(
      "gumbel_softmax_backward",
      [](const py::array& grad_y, const py::array& y_soft, double tau, const py::object& inv_taus,
         int axis, const py::object& out) {
        return is_double(grad_y) ? backward_impl<double>(grad_y, y_soft, tau, inv_taus, axis, out)
                                 : backward_impl<float>(grad_y, y_soft, tau, inv_taus, axis, out);
      },
      py::arg("grad_y"), py::arg("y_soft"), py::arg("tau"), py::arg("inv_taus"), py::arg("axis"),
      py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "forward_rows.hpp"
#include "rows/schedule.hpp"
#include "simd/half.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// The float32 y_soft of a small temperature has entries below the smallest normal,
// whose products take a microcode assist each (vmath.hpp, GS_EXACT_TINY): from the
// first 16 elements with such a y_soft on, the rest of the segment's dot uses
// vmath::fma_exact (the same bits), and the segment is reported (*tiny) so that
// backward_apply uses vmath::mul_exact on it (its own running sums may be subnormal
// too, hence the rest of the segment and not only those elements).
#if defined(GS_EXACT_TINY)
GS_COLD void segment_dot_tiny(const float* g, const float* s, int64_t& c, int64_t end,
                              Vec<float> (&vacc)[kSub<float>]) {
  using V = Vec<float>;
  for (; c + kLanes <= end; c += kLanes)
    for (int k = 0; k < kSub<float>; ++k) {
      const int64_t o = c + k * kW<float>;
      vacc[k] = vmath::fma_exact(lanes::load<V>(g + o), lanes::load<V>(s + o), vacc[k]);
    }
}
#endif

// dot = sum(grad_y * y_soft) over elements [begin, end) of a row, in the order of the
// forward sums (partial sum (c - begin) % 16, combined pairwise).  *tiny: see above.
template <class T>
T segment_dot(const T* g, int64_t gst, const T* s, int64_t sst, int64_t begin, int64_t end,
              bool* tiny) {
  int64_t c = begin;
  T acc[kLanes] = {};
#ifdef GS_HAVE_VECTOR_EXT
  if (gst == 1 && sst == 1) {
    using V = Vec<T>;
    V vacc[kSub<T>] = {};
    for (; c + kLanes <= end; c += kLanes) {
#if defined(GS_EXACT_TINY)
      if constexpr (sizeof(T) == 4) {
        auto t = vmath::tiny_lanes(lanes::load<V>(s + c));
        for (int k = 1; k < kSub<T>; ++k) t |= vmath::tiny_lanes(lanes::load<V>(s + c + k * kW<T>));
        if (lanes::any_set(t)) {
          *tiny = true;
          segment_dot_tiny(g, s, c, end, vacc);
          break;
        }
      }
#endif
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = c + k * kW<T>;
        vacc[k] = lanes::fma(lanes::load<V>(g + o), lanes::load<V>(s + o), vacc[k]);
      }
    }
    spill<T>(vacc, acc);
  }
#endif
  for (; c + kLanes <= end; c += kLanes)
    for (int j = 0; j < kLanes; ++j)
      acc[j] = lanes::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
  for (int j = 0; c + j < end; ++j) acc[j] = lanes::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
  return tree_sum(acc);
}

// dot of a whole row, segment by segment like the forward sums.
template <class T>
T row_dot(const T* g, int64_t gst, const T* s, int64_t sst, int64_t len, bool* tiny) {
  T dot = segment_dot(g, gst, s, sst, 0, std::min(len, kSegment), tiny);
  for (int64_t b = kSegment; b < len; b += kSegment)
    dot = dot + segment_dot(g, gst, s, sst, b, std::min(len, b + kSegment), tiny);
  return dot;
}

// The NaN of a backward row [begin, end) (out = y_soft * (grad_y - dot) / tau) made
// canonical.  With a finite dot every grad_y and y_soft of the row is finite (a NaN or
// infinite one makes the fused sum NaN or infinite), and a NaN can only come from
// 0 * inf where the inf is an overflow of a finite value (y_soft = 0 and grad_y - dot
// overflowing, or 1/tau rounded to 0 and the product overflowing): the exact value is 0,
// which it becomes.  Otherwise it becomes the canonical NaN.
template <class T>
GS_COLD void fix_nan(T* o, int64_t ost, int64_t begin, int64_t end, T dot) {
  const T nan_as = dot - dot == T(0) ? T(0) : kNaN<T>;
  for (int64_t i = begin; i < end; ++i)
    if (o[i * ost] != o[i * ost]) o[i * ost] = nan_as;
}

// out = y_soft * (grad_y - dot) / tau on elements [begin, end).  Element c is read
// before it is written, so out may be grad_y or y_soft itself.
// NaN results are then made canonical by fix_nan, in a second pass over the rows
// where one came out (the first only tests for them).
// tiny: the segment's dot reported y_soft below the smallest normal; its whole vectors
// then use vmath::mul_exact.
// next (with kNext): the next row's grad_y, y_soft and out, each line of which is
// prefetched as the same line of this row is computed (see BackwardOp::row).
template <class T>
struct NextBackwardRow {
  const T *g, *s, *o;
};
template <class T, bool kNext = false>
GS_INLINE void backward_apply(const T* g, int64_t gst, const T* s, int64_t sst, T* o, int64_t ost,
                              int64_t begin, int64_t end, T dot, T inv_tau, bool tiny,
                              NextBackwardRow<T> next = {}) {
  int64_t i = begin;
  bool nan = false;
#ifdef GS_HAVE_VECTOR_EXT
  if (gst == 1 && sst == 1 && ost == 1) {
    using V = Vec<T>;
    lanes::NanTest<V> vnan;
#if defined(GS_EXACT_TINY)
    if constexpr (sizeof(T) == 4)
      if (tiny) {
        const V it = lanes::splat<V>(inv_tau);
        for (; i + kW<T> <= end; i += kW<T>) {
          const V d = lanes::load<V>(g + i) - dot;
          const V r = vmath::mul_exact(vmath::mul_exact(lanes::load<V>(s + i), d), it);
          lanes::store(o + i, r);
          vnan.add(r);
        }
      }
#endif
    (void)tiny;
    for (; i + kW<T> <= end; i += kW<T>) {
      if constexpr (kNext) {
        GS_PREFETCH(next.g + i, 0);
        GS_PREFETCH(next.s + i, 0);
        GS_PREFETCH(next.o + i, 1);
      }
      const V r = (lanes::load<V>(s + i) * (lanes::load<V>(g + i) - dot)) * inv_tau;
      lanes::store(o + i, r);
      vnan.add(r);
    }
#ifdef GS_HAVE_PARTIAL
    // The last, partial vector (short rows: all of it).  Its masked-off lanes compute
    // (0 * (0 - dot)) / tau, NaN only where dot is not finite (fix_nan's test below
    // then runs on a row that may well need it; it only changes NaN elements).
    if (i < end) {
      const int64_t n = end - i;
      const V r = (lanes::load_first(s + i, n) * (lanes::load_first(g + i, n) - dot)) * inv_tau;
      lanes::store_first(o + i, r, n);
      vnan.add(r);
      i = end;
    }
#endif
    nan = vnan.any();
  }
#endif
  for (; i < end; ++i) {
    const T r = (s[i * sst] * (g[i * gst] - dot)) * inv_tau;
    o[i * ost] = r;
    nan = nan || r != r;
  }
  if (nan) fix_nan(o, ost, begin, end, dot);
}

template <class T>
struct BackwardOp : Schedule {
  static constexpr bool kSplitRows = true;
  static constexpr bool kTiles = true;
  const BackwardArgs<T>& a;
  const int64_t len;
  Scratch<T> seg_dot;
  explicit BackwardOp(const BackwardArgs<T>& args) : a(args), len(args.gs.len) {}

  T itau(int64_t r) const { return a.inv_taus ? a.inv_taus[r] : a.inv_tau; }
  Scratch<unsigned char> seg_tiny;  // split rows: each segment's tiny flag (segment_dot)
  // kNext: next's lines are prefetched during the second pass (see row()).
  template <bool kNext = false>
  void whole_row(const T* g, int64_t gst, const T* s, int64_t sst, T* o, int64_t ost, T inv_tau,
                 NextBackwardRow<T> next = {}) const {
    bool tiny = false;
    const T dot = row_dot(g, gst, s, sst, len, &tiny);
    backward_apply<T, kNext>(g, gst, s, sst, o, ost, 0, len, dot, inv_tau, tiny, next);
  }
  void begin_split() {
    seg_dot.resize(segments(len));
    seg_tiny.resize(segments(len));
  }
  void split_row(int64_t r) {
    const int64_t nseg = segments(len);
    const T* g = a.grad_y + row_offset(a.gs, r);
    const T* s = a.y_soft + row_offset(a.ss, r);
    T* o = a.out + row_offset(a.os, r);
    for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
      bool tiny = false;
      seg_dot[k] = segment_dot(g, a.gs.step, s, a.ss.step, begin, end, &tiny);
      seg_tiny[k] = tiny;
    });
    T dot = seg_dot[0];
    for (int64_t k = 1; k < nseg; ++k) dot = dot + seg_dot[k];
    for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
      backward_apply(g, a.gs.step, s, a.ss.step, o, a.os.step, begin, end, dot, itau(r),
                     seg_tiny[k] != 0);
    });
  }
  bool strided() const { return a.gs.step != 1 || a.ss.step != 1 || a.os.step != 1; }
  int64_t tile_elements() const { return 2 * kTileRows * len; }
  void tile(int64_t r0, int64_t g, T* tile) const {
    T* gt = tile;
    T* st = tile + kTileRows * len;
    gather_tile(a.grad_y, a.gs, r0, g, gt);
    gather_tile(a.y_soft, a.ss, r0, g, st);
    for (int64_t i = 0; i < g; ++i)
      whole_row(gt + i * len, 1, st + i * len, 1, gt + i * len, 1, itau(r0 + i));
    scatter_tile(a.out, a.os, r0, g, gt);
  }
#ifdef GS_HAVE_VECTOR_EXT
  // Short rows (rows/short_rows.hpp), one row per lane: each lane computes its row's
  // dot in the row path's order (partial sum c % 16, fused, then the pairwise tree) and
  // then out as backward_apply does, NaN included (fix_nan), so the bits are the row
  // path's.  The group is read whole before out is written (out may be an input).
  static constexpr bool kShortRows = true;
  void short_group(int64_t r0, int64_t n) const {
    using V = Vec<T>;
    constexpr int W = kW<T>;
    alignas(64) T gc[kShortMax * W], sc[kShortMax * W];
    load_columns(a.grad_y, a.gs, r0, n, len, T(0), gc);
    load_columns(a.y_soft, a.ss, r0, n, len, T(0), sc);
    V acc[kLanes] = {};
    for (int64_t c = 0; c < len; ++c)
      acc[c % kLanes] =
          lanes::fma(lanes::load<V>(gc + c * W), lanes::load<V>(sc + c * W), acc[c % kLanes]);
    const V dot = tree_sum(acc);
    const V it = row_lanes(a.inv_taus, 1, r0, n, a.inv_tau);
    const V nan_as = lanes::select(dot - dot == T(0), V{}, lanes::splat<V>(kNaN<T>));
    for (int64_t c = 0; c < len; ++c) {
      const V g = lanes::load<V>(gc + c * W), y = lanes::load<V>(sc + c * W);
      const V r = (y * (g - dot)) * it;
      lanes::store(gc + c * W, lanes::select(r != r, nan_as, r));
    }
    store_columns(gc, a.out, a.os, r0, n, len);
  }
#endif
  // Row by row on operands too large for the caches, the next row's lines are fetched
  // during this row's second pass (out = ...), which reads only cached lines: 1.07-1.10x
  // at (4096, 1000) and (2048, 2000), 2 threads.  Not on smaller operands, where the
  // three hints per vector cost more than they bring (0.89x at (256, 1000)), nor on rows
  // of more than 8 KiB, whose three next rows crowd this row out of L1 (0.97x at
  // (1024, 4096)).
  bool prefetch_rows() const {
    const int64_t row_bytes = len * static_cast<int64_t>(sizeof(T));
    return !strided() && row_bytes <= 8192 && a.gs.nrows * row_bytes >= kPrefetchMinBytes;
  }
  const bool prefetch = prefetch_rows();
  void row(int64_t r, int) const {
    const T* g = a.grad_y + row_offset(a.gs, r);
    const T* s = a.y_soft + row_offset(a.ss, r);
    T* o = a.out + row_offset(a.os, r);
    if (!prefetch || r + 1 == a.gs.nrows)
      return whole_row(g, a.gs.step, s, a.ss.step, o, a.os.step, itau(r));
    const NextBackwardRow<T> next{a.grad_y + row_offset(a.gs, r + 1),
                                  a.y_soft + row_offset(a.ss, r + 1),
                                  a.out + row_offset(a.os, r + 1)};
    whole_row<true>(g, 1, s, 1, o, 1, itau(r), next);
  }
};

// y rounded to float16 (round 1) or bfloat16 (2) and back, in place (float32 only).
template <class T>
void round_to_half(T* y, int64_t len, int round) {
  if constexpr (sizeof(T) == 4) {
    auto one = [round](auto u) {
      return round == 2 ? half::bf16_to_f32_bits(half::f32_to_bf16_bits(u))
                        : half::f16_to_f32_bits(half::f32_to_f16_bits(u));
    };
    int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
    using V = Vec<T>;
    for (; c + kW<T> <= len; c += kW<T>)
      lanes::store(y + c, lanes::from_bits(one(lanes::as_bits(lanes::load<V>(y + c)))));
#endif
    for (; c < len; ++c) y[c] = lanes::from_bits(one(lanes::as_bits(y[c])));
  }
}

// The memory-saving backward, fused: per row, the soft sample into the thread's row
// buffer (as the forward's row path computes it: the tau = 1 path, or pass 1 and the
// softmax), then the backward from it while it is in cache.  Row by row on every shape
// (every path of the forward gives the same bits).
template <class T>
struct RecomputeOp : Schedule {
  const BackwardArgs<T>& a;
  const int64_t len;
  Scratch<T> scratch;  // per thread: the row's soft sample
  explicit RecomputeOp(const BackwardArgs<T>& args) : a(args), len(args.gs.len) {}

  void begin_rows(int nthreads) { scratch.resize(static_cast<int64_t>(nthreads) * len); }
  // pf: the row's grad_y and out, fetched while the soft sample is computed, so that
  // their memory traffic overlaps its arithmetic instead of following it (see row()).
  void soft_row(int64_t r, T itau, T* v, const RowPrefetch<T>& pf) const {
    const T* xr = a.x + row_offset(a.xs, r);
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    if (itau == T(1)) return unit_softmax_row(xr, a.xs.step, len, a.key, q, v, v, 1, pf);
    const RowStats<T> st = itau == T(0)
                               ? noisy_logits(xr, a.xs.step, 0, len, a.key, q, v, pf)
                               : noisy_logits<T, false>(xr, a.xs.step, 0, len, a.key, q, v, pf);
    if (st.defined())
      softmax_from_noisy(v, len, st.max, itau, false, v, 1);
    else
      fill_nan(v, 1, len);
  }
  // The backward of row r from its soft sample v (contiguous; rounded first when the
  // forward rounded it).
  void backward_from(int64_t r, T* v) const {
    if (a.round_soft) round_to_half(v, len, a.round_soft);
    const T* g = a.grad_y + row_offset(a.gs, r);
    bool tiny = false;
    const T dot = row_dot(g, a.gs.step, v, 1, len, &tiny);
    backward_apply(g, a.gs.step, v, 1, a.out + row_offset(a.os, r), a.os.step, 0, len, dot, itau(r),
                   tiny);
  }
  T itau(int64_t r) const { return a.inv_taus ? a.inv_taus[r] : a.inv_tau; }

#ifdef GS_HAVE_VECTOR_EXT
  // Short rows (rows/short_rows.hpp): the soft samples of a group of rows as the
  // forward's short-row path computes them (ShortGroup, on the group's rows of x copied
  // into a contiguous block; bitwise the row path's), then each row's backward.
  static constexpr bool kShortRows = true;
  void short_group(int64_t r0, int64_t n) const {
    if (len == 0) return;
    alignas(64) T x[kW<T> * kShortMax], soft[kW<T> * kShortMax];
    for (int64_t i = 0; i < n; ++i) {
      const T* xr = a.x + row_offset(a.xs, r0 + i);
      for (int64_t c = 0; c < len; ++c) x[i * len + c] = xr[c * a.xs.step];
    }
    ForwardArgs<T> fa;
    fa.xs.nrows = fa.ys.nrows = n;
    fa.xs.len = fa.ys.len = len;
    fa.xs.nbatch = fa.ys.nbatch = 1;
    fa.xs.shape[0] = fa.ys.shape[0] = n;
    fa.xs.stride[0] = fa.ys.stride[0] = len;
    fa.x = x;
    fa.y = soft;
    fa.inv_tau = a.inv_tau;
    fa.inv_taus = a.inv_taus ? a.inv_taus + r0 : nullptr;
    fa.key = a.key;
    fa.first_row = a.first_row + static_cast<uint64_t>(r0);
    forward_short_group(Fwd<T>(fa), 0, n);
    for (int64_t i = 0; i < n; ++i) backward_from(r0 + i, soft + i * len);
  }
#endif

  void row(int64_t r, int tid) const {
    T* v = scratch.data() + static_cast<int64_t>(tid) * len;
    const T itau = this->itau(r);
    const T* g = a.grad_y + row_offset(a.gs, r);
    T* o = a.out + row_offset(a.os, r);
    // Prefetched where both are contiguous and fit in L2 beside the row buffer; else the
    // hint points at the row buffer (already cached).  Measured: 1.15x faster at
    // (4096, 1000) and (1024, 4096), 2 threads (bench/ab.py --against the build before).
    const bool pf = a.gs.step == 1 && a.os.step == 1 && len <= kPrefetchLen;
    soft_row(r, itau, v, RowPrefetch<T>{pf ? g : v, pf ? o : v});
    backward_from(r, v);
  }
};

template <class T>
void backward_kernel(const BackwardArgs<T>& a) {
  if (a.x) {
    RecomputeOp<T> op(a);
    return run_schedule<T>(op, a.gs.nrows, a.gs.len);
  }
  BackwardOp<T> op(a);
  run_schedule<T>(op, a.gs.nrows, a.gs.len);
}

}  // namespace

GS_KERNEL(BackwardArgs, backward_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
