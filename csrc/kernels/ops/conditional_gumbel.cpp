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

// v (contiguous, len elements) -> z in place, given z_I = zi at i.
template <class T>
void conditional_from_noisy(T* v, int64_t len, int64_t i, T zi) {
  int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  for (; c + kW<T> <= len; c += kW<T>) lanes::store(v + c, truncated(lanes::load<V>(v + c), zi));
#endif
  for (; c < len; ++c) v[c] = truncated(v[c], zi);
  const T below = next_below(zi);  // the tie rule: z_j < z_I for j < I, z_j <= z_I after
  for (int64_t j = 0; j < i; ++j)
    if (v[j] >= zi) v[j] = below;
  v[i] = zi;
}

// Row by row only: each row needs its logsumexp and its v, in per-thread scratch.
template <class T>
struct ConditionalOp : Schedule {
  const ConditionalArgs<T>& a;
  const int64_t len;
  Scratch<T> scratch;  // per thread: x of the row, then v (when z is strided)

  explicit ConditionalOp(const ConditionalArgs<T>& args) : a(args), len(args.xs.len) {}

  void begin_rows(int nthreads) { scratch.resize(static_cast<int64_t>(nthreads) * 2 * len); }
  void row(int64_t r, int tid) const {
    T* xb = scratch.data() + static_cast<int64_t>(tid) * 2 * len;
    const T* xr = a.x + row_offset(a.xs, r);
    for (int64_t c = 0; c < len; ++c) xb[c] = xr[c * a.xs.step];
    T* zr = a.z + row_offset(a.zs, r);
    T* v = a.zs.step == 1 ? zr : xb + len;
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    const RowStats<T> st = noisy_logits(xb, 1, 0, len, a.key, q, v);
    if (!st.defined()) return fill_nan(zr, a.zs.step, len);
    const int64_t i = a.index[r];
    const T zi = row_logsumexp(xb, len, row_max(xb, 1, 0, len)) + gumbel_at<T>(a.key, q, i);
    conditional_from_noisy(v, len, i, zi);
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
