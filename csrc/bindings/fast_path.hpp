// The fast path of the samplers' common case (issue 15: small calls within 2x one
// np.exp).  A sampler's Python function first hands its arguments, as the caller gave
// them, to a METH_FASTCALL function of _core (see ops/softmax_forward.cpp), which takes
// the call only when every argument is of the common kind and valid:
//
//   logits  an exact numpy.ndarray of native float32 or float64, aligned, ndim >= 1,
//           not empty, rows of 1 .. 2**31 - 1 elements;
//   tau     a float (or subclass: np.float64) or an int, positive and finite;
//   flags   True or False;  axis: an int in [-ndim, ndim);  mask: None;
//   rng     None (64 bits of OS entropy, as gs.Philox()), an int in [0, 2**64) (a new
//           Philox at counter 0) or a gs.Philox;
//   out     None, or an exact ndarray of logits' shape and dtype, writable, aligned, whose
//           memory is disjoint from logits' or exactly logits (in place).
//
// (gs.gumbel and gs.logistic have one of their own, ops/noise.cpp: noise_fast.)
// Anything else answers "not taken" (None) before anything is allocated or drawn, and the
// Python function runs its general path, whose checks raise the documented errors.  So
// the fast path raises only what the general path would raise for the same call after
// its checks: MemoryError of the result, OverflowError of the counter (the same
// reserve_rows), KeyboardInterrupt.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <new>

#include "common.hpp"
#include "philox_state.hpp"

namespace gumbel_softmax {
namespace fast {
namespace detail = pybind11::detail;

// Calls of at most this many elements run with the GIL held: releasing and retaking it
// costs more than such a call's kernel (a few microseconds at most), and they never use
// threads (kParallelMinElements is larger).
constexpr int64_t kHoldGilElements = int64_t{1} << 12;
constexpr int64_t kMaxRow = (int64_t{1} << 31) - 1;

// A validated float array: its layout and its RowSpec along the sampled axis.
struct Array {
  PyObject* obj = nullptr;
  char* data = nullptr;
  int nd = 0;
  const Py_ssize_t* shape = nullptr;
  const Py_ssize_t* strides = nullptr;
  int type_num = 0;
  int64_t size = 1;
};

inline const detail::npy_api& api() {
  static const detail::npy_api& a = detail::npy_api::get();
  return a;
}

// An exact ndarray of native float32 / float64, aligned (writable too with `writable`).
inline bool float_array(PyObject* o, Array& a, bool writable = false) {
  if (Py_TYPE(o) != api().PyArray_Type_) return false;
  const auto* p = detail::array_proxy(o);
  const auto* d = detail::array_descriptor_proxy(p->descr);
  const int num = d->type_num;
  if (num != detail::npy_api::NPY_FLOAT_ && num != detail::npy_api::NPY_DOUBLE_) return false;
  if (d->byteorder == '>') return false;  // byte-swapped (on a little-endian machine)
  int need = detail::npy_api::NPY_ARRAY_ALIGNED_;
  if (writable) need |= detail::npy_api::NPY_ARRAY_WRITEABLE_;
  if ((p->flags & need) != need || p->nd < 1 || p->nd > RowSpec::kMaxDims) return false;
  a.obj = o;
  a.data = p->data;
  a.nd = p->nd;
  a.shape = p->dimensions;
  a.strides = p->strides;
  a.type_num = num;
  a.size = 1;
  for (int k = 0; k < a.nd; ++k) a.size *= a.shape[k];
  return true;
}

inline bool is_double(const Array& a) { return a.type_num == detail::npy_api::NPY_DOUBLE_; }

// The sampled axis: an int in [-nd, nd), normalised; rows of 1 .. 2**31 - 1 elements.
inline bool axis_of(PyObject* o, const Array& a, int& axis) {
  if (!PyLong_CheckExact(o)) return false;
  int overflow = 0;
  const long v = PyLong_AsLongAndOverflow(o, &overflow);
  if (overflow || v < -a.nd || v >= a.nd) return false;
  axis = static_cast<int>(v < 0 ? v + a.nd : v);
  const int64_t n = a.shape[axis];
  return n >= 1 && n <= kMaxRow;
}

// tau: a float (np.float64 included) or an int, positive and finite.  Other float
// subclasses are left to the general path, which takes float(tau) (their __float__).
inline bool tau_of(PyObject* o, double& tau) {
  if (PyFloat_CheckExact(o) ||
      (PyFloat_Check(o) && std::strcmp(Py_TYPE(o)->tp_name, "numpy.float64") == 0)) {
    tau = PyFloat_AS_DOUBLE(o);
  } else if (PyLong_CheckExact(o)) {
    tau = PyLong_AsDouble(o);
    if (tau == -1.0 && PyErr_Occurred()) {  // too large for a float64
      PyErr_Clear();
      return false;
    }
  } else {
    return false;
  }
  return tau > 0.0 && tau < HUGE_VAL;
}

inline bool flag_of(PyObject* o, bool& b) {
  if (o != Py_True && o != Py_False) return false;
  b = o == Py_True;
  return true;
}

// The element range [lo, hi) of an array's memory, in bytes.
inline void bounds(const Array& a, int itemsize, const char*& lo, const char*& hi) {
  lo = hi = a.data;
  for (int k = 0; k < a.nd; ++k) {
    const Py_ssize_t ext = (a.shape[k] - 1) * a.strides[k];
    (ext < 0 ? lo : hi) += ext;
  }
  hi += itemsize;
}

// out: None, or a writable array of x's shape and dtype that is x itself (the same
// memory and layout) or shares no byte with it.  (The general path decides the rest:
// an overlapping view that shares no element, or an error naming out.)
inline bool out_of(PyObject* o, const Array& x) {
  if (o == Py_None) return true;
  Array out;
  if (!float_array(o, out, true) || out.type_num != x.type_num || out.nd != x.nd) return false;
  bool same = out.data == x.data;
  for (int k = 0; k < x.nd; ++k) {
    if (out.shape[k] != x.shape[k]) return false;
    same = same && (x.shape[k] <= 1 || out.strides[k] == x.strides[k]);  // (as same_memory)
  }
  if (same) return true;
  const int item = is_double(x) ? 8 : 4;
  const char *xlo, *xhi, *olo, *ohi;
  bounds(x, item, xlo, xhi);
  bounds(out, item, olo, ohi);
  return ohi <= xlo || xhi <= olo;
}

inline bool c_contiguous(const Array& a) {
  return (detail::array_proxy(a.obj)->flags & detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) != 0;
}

// The RowSpec of an array along axis (element strides: the ALIGNED flag makes byte
// strides multiples of the item size).
inline RowSpec rowspec(const Array& a, int axis) {
  int64_t shape[RowSpec::kMaxDims], strides[RowSpec::kMaxDims];
  const int64_t item = is_double(a) ? 8 : 4;
  for (int k = 0; k < a.nd; ++k) {
    shape[k] = a.shape[k];
    strides[k] = a.strides[k] / item;
  }
  return make_rowspec(a.nd, shape, strides, axis);
}

// The RowSpec of an array that the call allocated or validated.
inline RowSpec rowspec(const py::array& a, int axis) {
  Array v;
  float_array(a.ptr(), v);
  return rowspec(v, axis);
}

constexpr int kInt64 = detail::npy_api::NPY_INT64_;

// A new C-contiguous array of NumPy type number type_num with `nd` dimensions `shape`.
inline py::array new_array(int type_num, int nd, const Py_ssize_t* shape) {
  PyObject* descr = api().PyArray_DescrFromType_(type_num);
  if (descr == nullptr) throw py::error_already_set();
  PyObject* r =
      api().PyArray_NewFromDescr_(api().PyArray_Type_, descr, nd, shape, nullptr, nullptr, 0,
                                  nullptr);  // steals descr
  if (r == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::array>(r);
}

// The generator of a fast call, decided before anything is allocated: a gs.Philox, or a
// seed (an int in [0, 2**64); None: drawn from the OS when the rows are taken).
struct Rng {
  PhiloxState* philox = nullptr;
  bool entropy = false;
  uint64_t seed = 0;
};

inline PyTypeObject*& philox_type() {
  static PyTypeObject* t = nullptr;  // set by the binding once gs.Philox exists
  return t;
}

inline bool rng_of(PyObject* o, Rng& r) {
  if (o == Py_None) {
    r.entropy = true;
    return true;
  }
  if (PyLong_CheckExact(o)) {
    r.seed = PyLong_AsUnsignedLongLong(o);
    if (r.seed == static_cast<uint64_t>(-1) && PyErr_Occurred()) {  // negative or >= 2**64
      PyErr_Clear();
      return false;
    }
    return true;
  }
  PyTypeObject* t = philox_type();
  if (t == nullptr || !PyObject_TypeCheck(o, t)) return false;
  // the C++ object of a gs.Philox (pybind11's simple layout: one value, no type lookup);
  // one never initialised (Philox.__new__) is left to the general path, which raises
  const auto v_h = reinterpret_cast<detail::instance*>(o)->get_value_and_holder();
  if (!v_h.holder_constructed()) return false;
  r.philox = static_cast<PhiloxState*>(v_h.value_ptr());
  return r.philox != nullptr;
}

// Takes nrows rows: reserved from the Philox (advancing it; OverflowError past 2**64,
// as take_rows), or rows 0 .. of a new stream.  Called last, after every allocation.
inline Rows take_rows(const Rng& r, uint64_t nrows) {
  Rows rows;
  rows.count = nrows;
  if (r.philox != nullptr) {
    rows.philox = r.philox;
    rows.key = r.philox->key();
    rows.first = reserve_rows(*r.philox, nrows);
    return rows;
  }
  rows.key = PhiloxState(r.entropy ? os_entropy_seed() : r.seed, 0).key();
  return rows;
}

// Runs the kernel of a call of n elements: with the GIL released as run_kernel does,
// except for small calls (kHoldGilElements).  Ctrl-C and MemoryError as run_kernel.
template <class Kernel>
void run(Kernel&& kernel, const Rows& rows, int64_t n) {
  if (n > kHoldGilElements) return run_kernel(kernel, &rows);
  begin_call();
  try {
    kernel();
  } catch (const std::bad_alloc&) {
    rows.give_back();
    throw;
  }
  if (interrupted()) throw py::error_already_set();
}

// The body of a METH_FASTCALL function: C++ exceptions become Python ones.
template <class Body>
PyObject* guarded(Body&& body) noexcept {
  try {
    return body();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

// Adds a METH_FASTCALL function (a static PyMethodDef) to the module.
inline void add_function(py::module_& m, PyMethodDef& def) {
  PyObject* f = PyCFunction_NewEx(&def, nullptr, m.attr("__name__").ptr());
  if (f == nullptr) throw py::error_already_set();
  m.add_object(def.ml_name, py::reinterpret_steal<py::object>(f));
}

// "Not taken": the caller runs its general path.
inline PyObject* not_taken() { Py_RETURN_NONE; }

// An entry of the public functions (_core.forward_entry, _core.categorical_entry): the
// fast function's result, or else the general path's, the Python function set by
// _core.set_general_paths (_ops.forward_general, _ops.categorical_general) called with
// the same arguments.  This saves small calls the Python frame of a function that would
// make the same choice (about 0.05 us).  general: a strong reference, kept for the life
// of the process (no destructor runs after the interpreter has gone).
template <PyObject* (*Fast)(PyObject*, PyObject* const*, Py_ssize_t)>
PyObject* entry(PyObject*& general, PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  PyObject* r = Fast(self, args, nargs);
  if (r != Py_None) return r;  // the result, or nullptr with the exception set
  Py_DECREF(r);
  if (general == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "the general path is not set (set_general_paths)");
    return nullptr;
  }
  return PyObject_Vectorcall(general, args, static_cast<size_t>(nargs), nullptr);
}

}  // namespace fast
}  // namespace gumbel_softmax
