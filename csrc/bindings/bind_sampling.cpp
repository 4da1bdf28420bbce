// The samplers and their gradients.  The Python layer has already normalised the
// arguments (dtype, tau, axis, out, mask); here: allocate the results, reserve the rows,
// release the GIL and run the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "common.hpp"
#include "gumbel_softmax/kernels.hpp"
#include "philox_state.hpp"

namespace gumbel_softmax {

namespace {

template <class T>
py::array_t<T> result_like(const py::array& a, const py::object& out) {
  if (!out.is_none()) return py::reinterpret_borrow<py::array_t<T>>(out);
  return py::array_t<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

// The per-row 1/tau values (None: the scalar tau for every row): a contiguous array of
// T with one value per row, already rounded by the Python layer as inverse_tau rounds.
template <class T>
const T* per_row(const py::object& inv_taus) {
  if (inv_taus.is_none()) return nullptr;
  return py::reinterpret_borrow<py::array_t<T>>(inv_taus).data();
}

// The shape of a without `axis`.
std::vector<py::ssize_t> batch_shape(const py::array& a, int axis) {
  std::vector<py::ssize_t> shape;
  for (int d = 0; d < a.ndim(); ++d)
    if (d != axis) shape.push_back(a.shape(d));
  return shape;
}

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

template <class T>
py::object top_k_impl(const py::array& logits, int64_t k, int axis, const py::object& rng) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  std::vector<py::ssize_t> shape = batch_shape(logits, axis);
  shape.push_back(static_cast<py::ssize_t>(k));
  py::array_t<int64_t> idx(shape);
  TopKArgs<T> a;
  a.xs = rowspec_of(x, axis);
  a.x = x.data();
  a.out = idx.mutable_data();
  a.k = k;
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(idx);
}

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

// The Python layer passes native float32 or float64 arrays only; compare by kind and size,
// since an equivalent descriptor need not be the very object dtype::of returns.
bool is_double(const py::array& a) { return a.dtype().kind() == 'f' && a.itemsize() == 8; }

}  // namespace

void bind_sampling(py::module_& m) {
  // float16 / bfloat16 bits (uint16, C-contiguous) <-> float32, as NumPy / ml_dtypes cast.
  m.def(
      "half_to_float",
      [](py::array_t<uint16_t, py::array::c_style> src, bool bf16) {
        py::array_t<float> dst(std::vector<py::ssize_t>(src.shape(), src.shape() + src.ndim()));
        const uint16_t* s = src.data();
        float* d = dst.mutable_data();
        const int64_t n = static_cast<int64_t>(src.size());
        run_kernel([&] { run(HalfToFloatArgs{s, d, n, bf16}); });
        return dst;
      },
      py::arg("src"), py::arg("bf16"));
  m.def(
      "float_to_half",
      [](py::array_t<float, py::array::c_style> src, bool bf16, const py::object& out) {
        // out: None, or a C-contiguous uint16 array of src's size, allocated by a caller
        // that must not allocate after its kernel has taken rows.
        py::array_t<uint16_t> dst = out.is_none()
                                        ? py::array_t<uint16_t>(std::vector<py::ssize_t>(
                                              src.shape(), src.shape() + src.ndim()))
                                        : py::reinterpret_borrow<py::array_t<uint16_t>>(out);
        if (dst.size() != src.size() || !(dst.flags() & py::array::c_style))
          throw py::value_error("float_to_half: out must be C-contiguous uint16 of src's size");
        const float* s = src.data();
        uint16_t* d = dst.mutable_data();
        const int64_t n = static_cast<int64_t>(src.size());
        run_kernel([&] { run(FloatToHalfArgs{s, d, n, bf16}); });
        return dst;
      },
      py::arg("src"), py::arg("bf16"), py::arg("out") = py::none());
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
      "top_k",
      [](const py::array& logits, int64_t k, int axis, const py::object& rng) {
        return is_double(logits) ? top_k_impl<double>(logits, k, axis, rng)
                                 : top_k_impl<float>(logits, k, axis, rng);
      },
      py::arg("logits"), py::arg("k"), py::arg("axis"), py::arg("rng"));
  m.def(
      "gumbel_softmax_backward",
      [](const py::array& grad_y, const py::array& y_soft, double tau, const py::object& inv_taus,
         int axis, const py::object& out) {
        return is_double(grad_y) ? backward_impl<double>(grad_y, y_soft, tau, inv_taus, axis, out)
                                 : backward_impl<float>(grad_y, y_soft, tau, inv_taus, axis, out);
      },
      py::arg("grad_y"), py::arg("y_soft"), py::arg("tau"), py::arg("inv_taus"), py::arg("axis"),
      py::arg("out"));
  m.def(
      "concrete_log_prob",
      [](const py::array& y, const py::array& logits, const py::array& tau, const py::array& cst,
         int64_t tau_step, bool log_space, int axis) {
        return is_double(y) ? concrete_impl<double>(y, logits, tau, cst, tau_step, log_space, axis)
                            : concrete_impl<float>(y, logits, tau, cst, tau_step, log_space, axis);
      },
      py::arg("y"), py::arg("logits"), py::arg("tau"), py::arg("cst"), py::arg("tau_step"),
      py::arg("log_space"), py::arg("axis"));
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

}  // namespace gumbel_softmax
