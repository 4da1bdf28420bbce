// gs.gumbel_softmax and gs.gumbel_softmax_backward.  The Python layer has already
// normalised the arguments (dtype, tau, axis, out); here: allocate the results, reserve
// the rows, release the GIL and run the kernel.
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

template <class T>
py::object forward_impl(const py::array& logits, double tau, bool hard, int axis,
                        PhiloxState& rng, const py::object& out, bool return_soft) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  py::array_t<T> y = result_like<T>(logits, out);
  py::array_t<T> y_soft;
  const bool separate_soft = hard && return_soft;
  if (separate_soft) y_soft = result_like<T>(logits, py::none());

  const RowSpec xs = rowspec_of(x, axis);
  const RowSpec ys = rowspec_of(y, axis);
  const RowSpec ss = separate_soft ? rowspec_of(y_soft, axis) : RowSpec{};
  const T* xp = x.data();
  T* yp = y.mutable_data();
  T* sp = separate_soft ? y_soft.mutable_data() : nullptr;
  const PhiloxKey key = rng.key();
  // Reserve only once everything else has succeeded: a failed call consumes no rows.
  const uint64_t first = reserve_rows(rng, xs.nrows);
  {
    // Safe without the GIL: raw pointers only; x, y and y_soft are held by this frame.
    py::gil_scoped_release release;
    forward_rows<T>(xp, xs, yp, ys, sp, ss, inverse_tau<T>(tau), hard, key, first);
  }
  if (!return_soft) return std::move(y);
  if (!hard) return py::make_tuple(y, y);
  return py::make_tuple(y, y_soft);
}

template <class T>
py::object backward_impl(const py::array& grad_y, const py::array& y_soft, double tau,
                         int axis, const py::object& out) {
  auto g = py::reinterpret_borrow<py::array_t<T>>(grad_y);
  auto s = py::reinterpret_borrow<py::array_t<T>>(y_soft);
  py::array_t<T> o = result_like<T>(grad_y, out);
  const RowSpec gsp = rowspec_of(g, axis), ssp = rowspec_of(s, axis), osp = rowspec_of(o, axis);
  const T* gp = g.data();
  const T* sp = s.data();
  T* op = o.mutable_data();
  {
    py::gil_scoped_release release;  // raw pointers only; arrays held by this frame
    backward_rows<T>(gp, gsp, sp, ssp, op, osp, inverse_tau<T>(tau));
  }
  return std::move(o);
}

// The Python layer passes native float32 or float64 arrays only; compare by kind and size,
// since an equivalent descriptor need not be the very object dtype::of returns.
bool is_double(const py::array& a) { return a.dtype().kind() == 'f' && a.itemsize() == 8; }

}  // namespace

void bind_sampling(py::module_& m) {
  m.def(
      "gumbel_softmax",
      [](const py::array& logits, double tau, bool hard, int axis, PhiloxState& rng,
         const py::object& out, bool return_soft) {
        return is_double(logits)
                   ? forward_impl<double>(logits, tau, hard, axis, rng, out, return_soft)
                   : forward_impl<float>(logits, tau, hard, axis, rng, out, return_soft);
      },
      py::arg("logits"), py::arg("tau"), py::arg("hard"), py::arg("axis"), py::arg("rng"),
      py::arg("out"), py::arg("return_soft"));
  m.def(
      "gumbel_softmax_backward",
      [](const py::array& grad_y, const py::array& y_soft, double tau, int axis,
         const py::object& out) {
        return is_double(grad_y) ? backward_impl<double>(grad_y, y_soft, tau, axis, out)
                                 : backward_impl<float>(grad_y, y_soft, tau, axis, out);
      },
      py::arg("grad_y"), py::arg("y_soft"), py::arg("tau"), py::arg("axis"), py::arg("out"));
}

}  // namespace gumbel_softmax
