// Op "conditional_gumbel": perturbed logits z = x + g conditioned on argmax(z) == index,
// drawn from the rows (and the very noise) of gumbel_softmax.
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Row r, with g the Gumbel noise of gumbel_softmax's row r (same counters) and
// v = x + g:  z_I = logsumexp(x) + g_I at I = index[r], and for j != I
// z_j = -logaddexp(-z_I, -v_j) = min(z_I, v_j) - log1p(exp(-|z_I - v_j|)); a z_j (j < I)
// that rounds to z_I becomes the next number below it, so that the first argmax of z is
// I.  Rows with a NaN or +inf x are NaN.  index: one per row, contiguous, in [0, len),
// at a finite x (checked by the caller).
template <class T>
struct ConditionalArgs {
  const T* x = nullptr;
  RowSpec xs;
  const int64_t* index = nullptr;
  T* z = nullptr;
  RowSpec zs;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// logits: float32/float64 of any strides; index: int64, C-contiguous, of the batch shape
// (validated by the Python layer; the range is checked again here, the kernel trusts it).
template <class T>
py::object conditional_impl(const py::array& logits, const py::array& index, int axis,
                            const py::object& rng, const py::object& out) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  auto idx = py::reinterpret_borrow<py::array_t<int64_t>>(index);
  ConditionalArgs<T> a;
  a.xs = rowspec_of(x, axis);
  if (idx.size() != static_cast<py::ssize_t>(a.xs.nrows))
    throw py::value_error("index must have one entry per row of logits");
  const int64_t* ip = idx.data();
  for (int64_t r = 0; r < a.xs.nrows; ++r)
    if (ip[r] < 0 || ip[r] >= a.xs.len) throw py::index_error("index out of range");
  py::array_t<T> z = result_like<T>(logits, out);
  a.zs = rowspec_of(z, axis);
  a.x = x.data();
  a.index = ip;
  a.z = z.mutable_data();
  // Rows only once everything else has succeeded: a failed call consumes none.
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(z);
}

void bind(py::module_& m) {
  m.def(
      "conditional_gumbel",
      [](const py::array& logits, const py::array& index, int axis, const py::object& rng,
         const py::object& out) {
        return is_double(logits) ? conditional_impl<double>(logits, index, axis, rng, out)
                                 : conditional_impl<float>(logits, index, axis, rng, out);
      },
      py::arg("logits"), py::arg("index"), py::arg("axis"), py::arg("rng"), py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/conditional.hpp"
#include "rows/schedule.hpp"
#include "rows/short_rows.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// z_j = min(zi, v) - log1p(exp(-|zi - v|)) (lanes or a scalar); v = -inf gives -inf.
template <class V, class S>
GS_INLINE V truncated(V v, S zi) {
  const V d = zi - v;
  const V ad = lanes::select(d < S(0), -d, d);
  const V m = lanes::select(v < zi, v, lanes::splat<V>(zi));
  return m - log1p_unit(vmath::exp(-ad));
}

// The largest T below z (z finite or +inf).
template <class T>
T next_below(T z) {
  if (z == T(0)) return -std::numeric_limits<T>::denorm_min();
  const auto b = lanes::as_bits(z);
  return lanes::from_bits(z > T(0) ? b - 1 : b + 1);
}

// g_c of absolute row q (the noise noisy_logits adds to element c).
template <class T>
T gumbel_at(PhiloxKey key, uint64_t q, int64_t c) {
  return -vmath::log(exponential_at<T>(key, q, c));
}

// Elements [begin, end) of v (contiguous, the row's element 0) -> z in place, given
// z_I = zi at i.  Elementwise: any split of a row into parts gives the same bits.
template <class T>
void conditional_part(T* v, int64_t begin, int64_t end, int64_t i, T zi) {
  int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  for (; c + kW<T> <= end; c += kW<T>) lanes::store(v + c, truncated(lanes::load<V>(v + c), zi));
#endif
  for (; c < end; ++c) v[c] = truncated(v[c], zi);
  const T below = next_below(zi);  // the tie rule: z_j < z_I for j < I, z_j <= z_I after
  for (int64_t j = begin; j < std::min(i, end); ++j)
    if (v[j] >= zi) v[j] = below;
  if (i >= begin && i < end) v[i] = zi;
}

// Few long rows (or one of at least kLongRow elements): one row at a time, each pass
// over the row's segments spread over the threads (and Ctrl-C polled between
// segments).  The same arithmetic as row(): the max is exact in any order, the
// logsumexp sums the segments in order, the rest is elementwise.
template <class T>
struct SplitConditional {
  const ConditionalArgs<T>* a = nullptr;
  int64_t len = 0, nseg = 0;
  int nthreads = 1;
  Scratch<RowStats<T>> seg_st;
  Scratch<T> seg_val;
  Scratch<T> seg_x;  // per thread: a segment of a strided x, gathered for exp_sum
  Scratch<T> vbuf;   // a strided z: v staged in one row buffer

  void init(const ConditionalArgs<T>& args) {
    a = &args;
    len = args.xs.len;
    nseg = segments(len);
    nthreads = static_cast<int>(std::min<int64_t>(max_threads(), nseg));
    seg_st.resize(nseg);
    seg_val.resize(nseg);
    if (args.xs.step != 1) seg_x.resize(static_cast<int64_t>(nthreads) * kSegment);
    if (args.zs.step != 1) vbuf.resize(len);
  }
  // body(k, begin, end, tid) over the segments of the row (for_segments with the tid).
  template <class Body>
  void segs(Body&& body) {
    for_rows(nseg, nthreads, [&](int64_t k, int tid) {
      body(k, k * kSegment, std::min(len, (k + 1) * kSegment), tid);
    });
  }
  // logsumexp of the row x (read before v overwrites it when z is x); segment k of a
  // strided x is gathered first (exp_sum sums element c in partial (c - begin) % 16,
  // so a gathered segment gives the bits of the contiguous one).
  T logsumexp(const T* x, int64_t step) {
    segs([&](int64_t k, int64_t begin, int64_t end, int) {
      seg_val[k] = row_max(x, step, begin, end);
    });
    T xmax = seg_val[0];
    for (int64_t k = 1; k < nseg; ++k) xmax = std::max(xmax, seg_val[k]);
    segs([&](int64_t k, int64_t begin, int64_t end, int tid) {
      if (step == 1) {  // kStore = false: exp_sum only reads x
        seg_val[k] = exp_sum<false>(const_cast<T*>(x), begin, end, xmax, T(1));
        return;
      }
      T* buf = seg_x.data() + static_cast<int64_t>(tid) * kSegment;
      for (int64_t c = begin; c < end; ++c) buf[c - begin] = x[c * step];
      seg_val[k] = exp_sum<false>(buf, 0, end - begin, xmax, T(1));
    });
    T sum = seg_val[0];
    for (int64_t k = 1; k < nseg; ++k) sum = sum + seg_val[k];
    return xmax + vmath::log(sum);
  }
  void row(int64_t r) {
    const T* xr = a->x + row_offset(a->xs, r);
    T* zr = a->z + row_offset(a->zs, r);
    T* v = vbuf.empty() ? zr : vbuf.data();
    const uint64_t q = a->first_row + static_cast<uint64_t>(r);
    const T lse = logsumexp(xr, a->xs.step);
    segs([&](int64_t k, int64_t begin, int64_t end, int) {
      seg_st[k] = noisy_logits(xr, a->xs.step, begin, end, a->key, q, v);
    });
    if (interrupted()) return;  // the loops stopped: seg_st is not the row's
    if (!combine(seg_st.data(), nseg).defined()) {
      return segs([&](int64_t, int64_t begin, int64_t end, int) {
        fill_nan(zr + begin * a->zs.step, a->zs.step, end - begin);
      });
    }
    const int64_t i = a->index[r];
    const T zi = lse + gumbel_at<T>(a->key, q, i);
    segs([&](int64_t, int64_t begin, int64_t end, int) {
      conditional_part(v, begin, end, i, zi);
      if (v != zr)
        for (int64_t c = begin; c < end; ++c) zr[c * a->zs.step] = v[c];
    });
  }
};

#ifdef GS_HAVE_VECTOR_EXT
// A group of short rows (rows/short_rows.hpp), one row per vector lane: row()'s
// operations in its order, per lane (the noise of gumbel_softmax's rows, drawn for the
// group; logsumexp's element c in partial sum c % 16, combined as tree_sum does; the
// same truncation and tie rule).  z may be x itself: the group is read whole first.
template <class T>
void conditional_short_group(const ConditionalArgs<T>& a, int64_t r0, int64_t n) {
  using V = Vec<T>;
  constexpr int W = kW<T>;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const int64_t len = a.xs.len;
  alignas(64) T x[kShortMax * W];
  load_columns(a.x, a.xs, r0, n, len, T(0), x);  // (lanes past the group: a defined row)
  ShortNoise<T> noise;
  const T* g = noise.fill_columns(a.key, a.first_row, r0, n, len, Draw::gumbel);
  V v[kShortMax];
  const auto defined = noisy_columns(x, g, len, v).defined;
  V xmax = lanes::splat<V>(-kInf);  // row_max of x
  for (int64_t c = 0; c < len; ++c) {
    const V xc = lanes::load<V>(x + c * W);
    xmax = lanes::select(xc > xmax, xc, xmax);
  }
  int64_t idx[W];
  V gi, below;
  for (int i = 0; i < W; ++i) {
    idx[i] = i < n ? a.index[r0 + i] : 0;
    gi[i] = g[idx[i] * W + i];
  }
  const V zi = columns_logsumexp(x, len, xmax) + gi;
  for (int i = 0; i < W; ++i) below[i] = next_below(zi[i]);
  lanes::Int<V> col{}, at;
  for (int i = 0; i < W; ++i) at[i] = idx[i];
  for (int64_t c = 0; c < len; ++c, col += 1) {  // z into x's columns
    const V d = zi - v[c];
    const V ad = lanes::select(d < T(0), -d, d);
    V z = lanes::select(v[c] < zi, v[c], zi) - log1p_unit(vmath::exp(-ad));  // truncated()
    z = lanes::select((col < at) & (z >= zi), below, z);
    z = lanes::select(col == at, zi, z);
    lanes::store(x + c * W, lanes::select(defined, z, lanes::splat<V>(kNaN<T>)));
  }
  store_columns(x, a.z, a.zs, r0, n, len);
}
#endif

// Short rows (conditional_short_group), row by row (each row needs its logsumexp and
// its v, in per-thread scratch), and split rows.  (Strided rows take row().)
template <class T>
struct ConditionalOp : Schedule {
  static constexpr bool kShortRows = true;
  static constexpr bool kSplitRows = true;
  const ConditionalArgs<T>& a;
  const int64_t len;
  Scratch<T> scratch;  // per thread: x of the row, then v (when z is strided)
  SplitConditional<T> split;

  explicit ConditionalOp(const ConditionalArgs<T>& args) : a(args), len(args.xs.len) {}
  void begin_split() { split.init(a); }
  void split_row(int64_t r) { split.row(r); }
#ifdef GS_HAVE_VECTOR_EXT
  void short_group(int64_t r0, int64_t n) const { conditional_short_group(a, r0, n); }
#endif

  void begin_rows(int nthreads) { scratch.resize(static_cast<int64_t>(nthreads) * 2 * len); }
  void row(int64_t r, int tid) const {
    T* xb = scratch.data() + static_cast<int64_t>(tid) * 2 * len;
    const T* xr = a.x + row_offset(a.xs, r);
    for (int64_t c = 0; c < len; ++c) xb[c] = xr[c * a.xs.step];
    T* zr = a.z + row_offset(a.zs, r);
    T* v = a.zs.step == 1 ? zr : xb + len;
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    // row r + 1's x and z, fetched meanwhile (see next_row_prefetch)
    const auto pf = next_row_prefetch<T>(a.x, a.xs, a.z, &a.zs, r, xr);
    const RowStats<T> st = noisy_logits(xb, 1, 0, len, a.key, q, v, pf);
    if (!st.defined()) return fill_nan(zr, a.zs.step, len);
    const int64_t i = a.index[r];
    const T zi = row_logsumexp(xb, len, row_max(xb, 1, 0, len)) + gumbel_at<T>(a.key, q, i);
    conditional_part(v, 0, len, i, zi);
    if (v != zr)
      for (int64_t c = 0; c < len; ++c) zr[c * a.zs.step] = v[c];
  }
};

template <class T>
void conditional_kernel(const ConditionalArgs<T>& a) {
  ConditionalOp<T> op(a);
  run_schedule<T>(op, a.xs.nrows, a.xs.len);
}

}  // namespace

GS_KERNEL(ConditionalArgs, conditional_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
