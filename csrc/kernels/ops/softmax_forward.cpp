// Op "forward": the Gumbel-Softmax forward pass (gumbel_softmax, its log and hard
// variants) and categorical, which is its pass 1 alone.
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments: ForwardArgs, in softmax_args.hpp (types only) -----
#include "softmax_args.hpp"

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"
#include "bindings/fast_path.hpp"

namespace gumbel_softmax {
namespace {

// A mask (None, or a uint8 array of logits' shape, any strides) into a.
template <class T>
void set_mask(ForwardArgs<T>& a, const py::object& mask, int axis) {
  if (mask.is_none()) return;
  auto m = py::reinterpret_borrow<py::array_t<uint8_t>>(mask);
  if (a.xs.len > masked_row_limit(static_cast<int>(sizeof(T))))
    throw py::value_error("mask: rows too long for the kernel's mask (mask the logits first)");
  a.ms = rowspec_of(m, axis);
  a.mask = m.data();
}

template <class T>
py::object forward_impl(const py::array& logits, double tau, const py::object& inv_taus, bool hard,
                        bool log, int axis, const py::object& rng, const py::object& out,
                        bool return_soft, const py::object& mask) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  py::array_t<T> y = result_like<T>(logits, out);
  py::array_t<T> y_soft;
  const bool separate_soft = hard && return_soft;
  if (separate_soft) y_soft = result_like<T>(logits, py::none());

  ForwardArgs<T> a;
  a.xs = rowspec_of(x, axis);
  a.ys = rowspec_of(y, axis);
  if (separate_soft) a.ss = rowspec_of(y_soft, axis);
  a.x = x.data();
  a.y = y.mutable_data();
  a.y_soft = separate_soft ? y_soft.mutable_data() : nullptr;
  a.inv_tau = inverse_tau<T>(tau);
  a.inv_taus = per_row<T>(inv_taus);
  a.hard = hard;
  a.log = log;
  set_mask(a, mask, axis);
  // Rows only once everything else has succeeded: a failed call consumes none.
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  if (!return_soft) return std::move(y);
  if (!hard) return py::make_tuple(y, y);
  return py::make_tuple(y, y_soft);
}

template <class T>
py::object categorical_impl(const py::array& logits, int axis, const py::object& rng,
                            const py::object& mask) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  py::array_t<int64_t> idx(batch_shape(logits, axis));
  ForwardArgs<T> a;
  a.xs = rowspec_of(x, axis);
  a.x = x.data();
  a.index = idx.mutable_data();
  set_mask(a, mask, axis);
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(idx);
}

// ----- the fast path of the common case (bindings/fast_path.hpp) ----------------
template <class T>
py::object forward_fast_impl(const fast::Array& x, int axis, double tau, bool hard, bool log,
                             const fast::Rng& rng, PyObject* out, bool return_soft) {
  py::array y = out == Py_None ? fast::new_array(x.type_num, x.nd, x.shape)
                               : py::reinterpret_borrow<py::array>(out);
  // (a py::object, not a py::array: the default py::array is a new empty array, an
  // allocation that costs small calls about 0.1 us)
  py::object y_soft;
  ForwardArgs<T> a;
  if (hard && return_soft) {
    py::array s = fast::new_array(x.type_num, x.nd, x.shape);
    a.ss = fast::rowspec(s, axis);
    a.y_soft = static_cast<T*>(s.mutable_data());
    y_soft = std::move(s);
  }
  a.xs = fast::rowspec(x, axis);
  a.ys = out == Py_None && fast::c_contiguous(x) ? a.xs : fast::rowspec(y, axis);
  a.x = reinterpret_cast<const T*>(x.data);
  a.y = static_cast<T*>(y.mutable_data());
  a.inv_tau = inverse_tau<T>(tau);
  a.hard = hard;
  a.log = log;
  const Rows rows = fast::take_rows(rng, a.xs.nrows);  // last: a failed call draws nothing
  a.key = rows.key;
  a.first_row = rows.first;
  fast::run([&] { run(a); }, rows, x.size);
  if (!return_soft) return std::move(y);
  if (!hard) return py::make_tuple(y, y);
  return py::make_tuple(y, y_soft);
}

// _core.forward_fast(logits, tau, hard, log, axis, rng, out, return_soft, mask): the
// result, or None where the call is not of the common kind.
PyObject* forward_fast(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  return fast::guarded([&]() -> PyObject* {
    if (nargs != 9) throw py::type_error("forward_fast takes 9 arguments");
    fast::Array x;
    int axis = 0;
    double tau = 1;
    bool hard = false, log = false, soft = false;
    fast::Rng rng;
    if (!fast::float_array(args[0], x) || x.size == 0 || !fast::tau_of(args[1], tau) ||
        !fast::flag_of(args[2], hard) || !fast::flag_of(args[3], log) ||
        !fast::axis_of(args[4], x, axis) || !fast::rng_of(args[5], rng) ||
        !fast::out_of(args[6], x) || !fast::flag_of(args[7], soft) || args[8] != Py_None)
      return fast::not_taken();
    py::object r = fast::is_double(x)
                       ? forward_fast_impl<double>(x, axis, tau, hard, log, rng, args[6], soft)
                       : forward_fast_impl<float>(x, axis, tau, hard, log, rng, args[6], soft);
    return r.release().ptr();
  });
}

template <class T>
py::object categorical_fast_impl(const fast::Array& x, int axis, const fast::Rng& rng) {
  Py_ssize_t batch[RowSpec::kMaxDims];
  for (int k = 0, j = 0; k < x.nd; ++k)
    if (k != axis) batch[j++] = x.shape[k];
  py::array idx = fast::new_array(fast::kInt64, x.nd - 1, batch);
  ForwardArgs<T> a;
  a.xs = fast::rowspec(x, axis);
  a.x = reinterpret_cast<const T*>(x.data);
  a.index = static_cast<int64_t*>(idx.mutable_data());
  const Rows rows = fast::take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  fast::run([&] { run(a); }, rows, x.size);
  return idx;
}

// _core.categorical_fast(logits, axis, rng, mask): as forward_fast.
PyObject* categorical_fast(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  return fast::guarded([&]() -> PyObject* {
    if (nargs != 4) throw py::type_error("categorical_fast takes 4 arguments");
    fast::Array x;
    int axis = 0;
    fast::Rng rng;
    if (!fast::float_array(args[0], x) || x.size == 0 || !fast::axis_of(args[1], x, axis) ||
        !fast::rng_of(args[2], rng) || args[3] != Py_None)
      return fast::not_taken();
    py::object r = fast::is_double(x) ? categorical_fast_impl<double>(x, axis, rng)
                                      : categorical_fast_impl<float>(x, axis, rng);
    return r.release().ptr();
  });
}

// The general paths of the entries (fast::entry), set once by _ops.
PyObject* g_general_forward = nullptr;
PyObject* g_general_categorical = nullptr;

PyObject* forward_entry(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return fast::entry<&forward_fast>(g_general_forward, self, args, nargs);
}

PyObject* categorical_entry(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return fast::entry<&categorical_fast>(g_general_categorical, self, args, nargs);
}

template <PyObject* (*F)(PyObject*, PyObject* const*, Py_ssize_t)>
PyCFunction fastcall() {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(F));
}

PyMethodDef g_fast_defs[] = {
    {"forward_fast", fastcall<&forward_fast>(), METH_FASTCALL,
     "The common case of gumbel_softmax and log_gumbel_softmax, or None."},
    {"categorical_fast", fastcall<&categorical_fast>(), METH_FASTCALL,
     "The common case of categorical, or None."},
    {"forward_entry", fastcall<&forward_entry>(), METH_FASTCALL,
     "forward_fast's result, else the general path's (set_general_paths)."},
    {"categorical_entry", fastcall<&categorical_entry>(), METH_FASTCALL,
     "categorical_fast's result, else the general path's (set_general_paths)."}};

void bind(py::module_& m) {
  m.def(
      "gumbel_softmax",
      [](const py::array& logits, double tau, const py::object& inv_taus, bool hard, bool log,
         int axis, const py::object& rng, const py::object& out, bool return_soft,
         const py::object& mask) {
        return is_double(logits) ? forward_impl<double>(logits, tau, inv_taus, hard, log, axis, rng,
                                                        out, return_soft, mask)
                                 : forward_impl<float>(logits, tau, inv_taus, hard, log, axis, rng,
                                                       out, return_soft, mask);
      },
      py::arg("logits"), py::arg("tau"), py::arg("inv_taus"), py::arg("hard"), py::arg("log"),
      py::arg("axis"), py::arg("rng"), py::arg("out"), py::arg("return_soft"),
      py::arg("mask") = py::none());
  m.def("masked_row_limit", &masked_row_limit, py::arg("itemsize"),
        "The longest rows whose mask the kernels apply themselves.");
  m.def(
      "categorical",
      [](const py::array& logits, int axis, const py::object& rng, const py::object& mask) {
        return is_double(logits) ? categorical_impl<double>(logits, axis, rng, mask)
                                 : categorical_impl<float>(logits, axis, rng, mask);
      },
      py::arg("logits"), py::arg("axis"), py::arg("rng"), py::arg("mask") = py::none());
  m.def(
      "set_general_paths",
      [](const py::function& forward, const py::function& categorical) {
        for (auto [slot, f] : {std::pair{&g_general_forward, &forward},
                               std::pair{&g_general_categorical, &categorical}}) {
          PyObject* old = *slot;
          *slot = f->inc_ref().ptr();
          Py_XDECREF(old);
        }
      },
      py::arg("forward"), py::arg("categorical"),
      "The Python functions forward_entry and categorical_entry call when the fast path "
      "does not take a call.");
  fast::philox_type() = reinterpret_cast<PyTypeObject*>(py::type::of<PhiloxState>().ptr());
  for (PyMethodDef& def : g_fast_defs) fast::add_function(m, def);
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "forward_rows.hpp"
#include "rows/schedule.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// Few long rows: one row at a time, its segments over the threads.
template <class T>
struct SplitForward {
  const Fwd<T>* f = nullptr;
  int64_t len = 0, nseg = 0;
  Scratch<RowStats<T>> seg_st;
  Scratch<T> seg_sum;
  Scratch<unsigned char> seg_tiny;  // general_row: exp_sum's tiny flag of each segment
  Scratch<T> staged;                // a strided soft destination is staged in one row buffer

  void init(const Fwd<T>& fwd) {
    f = &fwd;
    len = fwd.a.xs.len;
    nseg = segments(len);
    seg_st.resize(nseg);
    seg_sum.resize(nseg);
    seg_tiny.resize(nseg);
    if (fwd.soft && fwd.soft_spec->step != 1) staged.resize(len);
  }
  T total() const {
    T sum = seg_sum[0];
    for (int64_t k = 1; k < nseg; ++k) sum = sum + seg_sum[k];
    return sum;
  }
  // The tau = 1 soft sample of row r (x at xr, in v, then to soft_row).
  void unit_row(const T* xr, PhiloxKey key, uint64_t q, T* v, T* soft_row) {
    const RowSpec& xs = f->a.xs;
    for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
      seg_sum[k] = row_max(xr, xs.step, begin, end);
    });
    T xmax = seg_sum[0];
    for (int64_t k = 1; k < nseg; ++k) xmax = std::max(xmax, seg_sum[k]);
    for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
      seg_sum[k] = unit_exp_sum(xr, xs.step, begin, end, xmax, key, q, v);
    });
    const T sum = total();
    if (sum == sum) {
      for_segments(len, [&](int64_t, int64_t begin, int64_t end) {
        scale<true>(v, begin, end, sum, soft_row, f->soft_spec->step);
      });
    } else {
      fill_nan(soft_row, f->soft_spec->step, len);
    }
  }
  // Passes 2 and 3 of the general soft sample of a defined row (v = x + g).
  void general_row(const RowStats<T>& st, T itau, T* v, T* soft_row) {
    const bool flat = itau == T(0);  // tau -> infinity: see flatten_row
    const T it = flat ? T(1) : itau;
    for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
      if (flat) flatten_row(v, begin, end, st.max);
      bool tiny = false;
      seg_sum[k] = f->a.log ? exp_sum<false>(v, begin, end, st.max, it)
                            : exp_sum(v, begin, end, st.max, it, &tiny);
      seg_tiny[k] = tiny;
    });
    const T sum = total();
    const T lse = f->a.log ? vmath::log(sum) : T(0);
    const T inv_sum = T(1) / sum;
    for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
      if (f->a.log)
        log_scale(v, begin, end, st.max, it, lse, soft_row, f->soft_spec->step);
      else
        scale(v, begin, end, inv_sum, soft_row, f->soft_spec->step, seg_tiny[k] != 0);
    });
  }
  void row(int64_t r) {
    const T* xr = f->a.x + row_offset(f->a.xs, r);
    const PhiloxKey key = f->key(r);
    const uint64_t q = f->row_q(r);
    const bool unit = f->unit(r);
    T* soft_row = f->soft ? f->soft + row_offset(*f->soft_spec, r) : nullptr;
    T* v = f->soft ? (staged.empty() ? soft_row : staged.data()) : nullptr;
    RowStats<T> st;
    if (f->needs_stats() || !unit) {
      for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
        seg_st[k] = noisy_logits(xr, f->a.xs.step, begin, end, key, q, unit ? nullptr : v);
      });
      st = combine(seg_st.data(), nseg);
    }
    // Ctrl-C stopped the loop: st is not the row's (a NaN fill or a one-hot written
    // over the whole row would hold the interrupt up by a pass over the row).
    if (interrupted()) return;
    if (unit)
      unit_row(xr, key, q, v, soft_row);
    else if (f->soft && st.defined())
      general_row(st, f->itau(r), v, soft_row);
    else if (f->soft)
      fill_nan(soft_row, f->soft_spec->step, len);
    finish(r, st);
  }
  // Fwd::finish over the row's segments (the same bits): the one-hot (or NaN) write of
  // a long row is polled for Ctrl-C as the other passes are.
  void finish(int64_t r, const RowStats<T>& st) {
    const ForwardArgs<T>& a = f->a;
    if (a.index) a.index[r] = st.defined() ? st.argmax : -1;
    if (!a.hard) return;
    T* yr = a.y + row_offset(a.ys, r);
    const T fill = st.defined() ? T(0) : kNaN<T>;
    for_segments(len, [&](int64_t, int64_t begin, int64_t end) {
      fill_row(yr + begin * a.ys.step, a.ys.step, end - begin, fill);
    });
    if (st.defined() && !interrupted()) yr[st.argmax * a.ys.step] = T(1);
  }
};

template <class T>
struct ForwardOp : Schedule {
  static constexpr bool kShortRows = true;
  static constexpr bool kSplitRows = true;
  static constexpr bool kTiles = true;
  const Fwd<T> f;
  const ForwardArgs<T>& a;
  const int64_t len;
  SplitForward<T> split;
  Scratch<T> scratch, masked;  // per thread (row by row): staged soft rows, masked x
  bool staged = false;

  explicit ForwardOp(const ForwardArgs<T>& args) : f(args), a(args), len(args.xs.len) {}

#ifdef GS_HAVE_VECTOR_EXT
  void short_group(int64_t r0, int64_t n) const { forward_short_group(f, r0, n); }
#endif
  bool may_split() const { return !a.mask; }
  void begin_split() { split.init(f); }
  void split_row(int64_t r) { split.row(r); }

  // A mask is applied as strided rows are gathered into tiles, and as contiguous rows
  // are copied into a row buffer in row() (rows of up to masked_row_limit elements; the
  // Python layer masks longer ones itself).
  bool strided() const {
    const bool strided =
        a.xs.step != 1 || (a.y && a.ys.step != 1) || (f.soft && f.soft_spec->step != 1);
    return strided || (a.mask && a.ms.step != 1);
  }
  int64_t tile_elements() const { return kTileRows * len; }
  void tile(int64_t r0, int64_t g, T* tile) const;

  // A strided soft destination is staged in a row buffer per thread, allocated here,
  // before any output is written, so that a failed allocation leaves `out` untouched.
  void begin_rows(int nthreads) {
    staged = f.soft != nullptr && f.soft_spec->step != 1;
    if (staged) scratch.resize(static_cast<int64_t>(nthreads) * len);
    if (a.mask) masked.resize(static_cast<int64_t>(nthreads) * len);
  }
  const T* mask_row(int64_t r, const T* xr, int tid) const;
  void row(int64_t r, int tid) const;
};

template <class T>
void ForwardOp<T>::tile(int64_t r0, int64_t g, T* tile) const {
  RowStats<T> st[kTileRows];
  if (a.mask)
    gather_tile_masked(a.x, a.xs, a.mask, a.ms, r0, g, tile);
  else
    gather_tile(a.x, a.xs, r0, g, tile);
  for (int64_t i = 0; i < g; ++i) {
    T* row = tile + i * len;  // x, then v = x + g, then the soft sample, in place
    const int64_t r = r0 + i;
    const PhiloxKey key = f.key(r);
    if (f.unit(r)) {
      if (f.needs_stats())
        st[i] = noisy_logits(row, 1, 0, len, key, f.row_q(r), static_cast<T*>(nullptr));
      unit_softmax_row(row, 1, len, key, f.row_q(r), row, row, 1);
      continue;
    }
    st[i] = noisy_logits(row, 1, 0, len, key, f.row_q(r), f.soft ? row : nullptr);
    if (f.soft) {
      if (st[i].defined())
        softmax_from_noisy(row, len, st[i].max, f.itau(r), a.log, row, 1);
      else
        fill_nan(row, 1, len);
    }
  }
  if (f.soft) scatter_tile(f.soft, *f.soft_spec, r0, g, tile);
  if (a.index)
    for (int64_t i = 0; i < g; ++i) a.index[r0 + i] = st[i].defined() ? st[i].argmax : -1;
  if (a.hard) {
    for (int64_t i = 0; i < g; ++i) write_hard(tile + i * len, 1, len, st[i]);
    scatter_tile(a.y, a.ys, r0, g, tile);
  }
}

// Row r of x with its mask applied, in the thread's row buffer (contiguous rows here:
// x and mask both step 1).
template <class T>
const T* ForwardOp<T>::mask_row(int64_t r, const T* xr, int tid) const {
  T* xm = masked.data() + static_cast<int64_t>(tid) * len;
  mask_contiguous(xr, a.mask + row_offset(a.ms, r), len, xm);
  return xm;
}

template <class T>
void ForwardOp<T>::row(int64_t r, int tid) const {
  const RowSpec& xs = a.xs;
  const T* xr = a.x + row_offset(xs, r);
  const bool to_soft = f.soft && !staged;  // row r + 1's x and output, fetched meanwhile
  const RowPrefetch<T> pf =
      next_row_prefetch(a.x, xs, to_soft ? f.soft : a.y, to_soft ? f.soft_spec : &a.ys, r, xr);
  if (a.mask) xr = mask_row(r, xr, tid);
  const PhiloxKey key = f.key(r);
  const uint64_t q = f.row_q(r);
  T* const soft = f.soft;
  T* soft_row = soft ? soft + row_offset(*f.soft_spec, r) : nullptr;
  T* v = soft ? (staged ? scratch.data() + static_cast<int64_t>(tid) * len : soft_row) : nullptr;
  if (f.unit(r)) {
    RowStats<T> st;
    if (f.needs_stats())
      st = noisy_logits(xr, xs.step, 0, len, key, q, static_cast<T*>(nullptr), pf);
    unit_softmax_row(xr, xs.step, len, key, q, v, soft_row, f.soft_spec->step, pf);
    f.finish(r, st);
    return;
  }
  // The soft sample alone needs the max only (see noisy_logits), unless 1/tau = 0.
  const RowStats<T> st = f.needs_stats() || f.itau(r) == T(0)
                             ? noisy_logits(xr, xs.step, 0, len, key, q, v, pf)
                             : noisy_logits<T, false>(xr, xs.step, 0, len, key, q, v, pf);
  if (soft) {
    if (st.defined())
      softmax_from_noisy(v, len, st.max, f.itau(r), a.log, soft_row, f.soft_spec->step);
    else
      fill_nan(soft_row, f.soft_spec->step, len);
  }
  f.finish(r, st);
}

template <class T>
void forward_kernel(const ForwardArgs<T>& a) {
  ForwardOp<T> op(a);
  run_schedule<T>(op, a.xs.nrows, a.xs.len);
}

}  // namespace

GS_KERNEL(ForwardArgs, forward_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
