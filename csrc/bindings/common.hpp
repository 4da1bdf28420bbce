// Helpers shared by the binding files (csrc/bindings/*.cpp and the binding part of each
// op file, csrc/kernels/ops/*.cpp under GS_BIND): NumPy array -> RowSpec, row
// reservation, running a kernel, and the registry of bindings (GS_BINDING).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "gumbel_softmax/kernels.hpp"
#include "philox_state.hpp"

namespace gumbel_softmax {
namespace py = pybind11;

// 1/tau for a positive finite tau, rounded to T and capped at T's largest finite value
// (a tau below 1/max would otherwise give inf, and 0 * inf = NaN at the row's maximum;
// the cap keeps the tau -> 0 limit, the one-hot).  A tau above about 2 / (T's smallest
// subnormal), 1.4e45 for float, gives 0: the kernels treat 1/tau == 0 as the
// tau -> infinity limit (uniform over the finite entries, see flatten_row in
// csrc/kernels/rows/softmax.hpp).
template <class T>
T inverse_tau(double tau) {
  const double inv = 1.0 / tau;
  const double top = static_cast<double>(std::numeric_limits<T>::max());
  return static_cast<T>(inv < top ? inv : top);
}

// Element strides of an aligned array (NumPy's ALIGNED flag guarantees that byte
// strides are multiples of the item size).  axis: normalised, in [0, ndim) (the Python
// layer normalises it; a private _core call with another axis gets a ValueError, not a
// read outside the shape).
inline RowSpec rowspec_of(const py::array& a, int axis) {
  const int nd = static_cast<int>(a.ndim());
  if (nd > RowSpec::kMaxDims)
    throw py::value_error("arrays of more than 64 dimensions are not supported");
  if (axis < 0 || axis >= nd)
    throw py::value_error("axis " + std::to_string(axis) + " is out of bounds for an array of " +
                          std::to_string(nd) + " dimensions (the bindings take it normalised)");
  int64_t shape[RowSpec::kMaxDims], strides[RowSpec::kMaxDims];
  const int64_t item = static_cast<int64_t>(a.itemsize());
  for (int d = 0; d < nd; ++d) {
    shape[d] = static_cast<int64_t>(a.shape(d));
    strides[d] = static_cast<int64_t>(a.strides(d)) / item;
  }
  return make_rowspec(nd, shape, strides, axis);
}

// 64 bits of OS entropy (the seed of gs.Philox() and of rng=None), as os.urandom(8)
// read little-endian: getrandom(2) where it exists (what os.urandom calls on Linux),
// else os.urandom itself.
inline uint64_t os_entropy_seed() {
  unsigned char b[8];
  bool done = false;
#if defined(__linux__) && defined(SYS_getrandom)
  size_t got = 0;
  while (got < sizeof b) {
    const long n = syscall(SYS_getrandom, b + got, sizeof b - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;  // ENOSYS (an old kernel), ...: ask Python
    }
  }
  done = got == sizeof b;
#endif
  if (!done) {
    const std::string s = py::bytes(py::module_::import("os").attr("urandom")(8));
    std::memcpy(b, s.data(), sizeof b);
  }
  uint64_t seed = 0;
  for (int i = 7; i >= 0; --i) seed = (seed << 8) | b[i];
  return seed;
}

// The C++ state of o, an instance of gs.Philox (or a subclass), or TypeError naming
// `name` when the object was never initialised (made by Philox.__new__ without
// __init__): pybind11 would cast it by allocating a state of uninitialised memory (its
// lazy allocation for __init__), whose seed, counter and mutex are garbage: a hang in the
// lock, an error naming nothing, or samples from a garbage seed.  Every method of
// gs.Philox and every call taking one goes through here.
inline PhiloxState& philox_state(py::handle o, const char* name) {
  if (!py::isinstance<PhiloxState>(o))  // a method called on another object
    throw py::type_error(std::string(name) + " must be a gs.Philox, got " +
                         std::string(py::str(py::type::of(o).attr("__name__"))));
  auto v_h = reinterpret_cast<py::detail::instance*>(o.ptr())->get_value_and_holder();
  if (!v_h.holder_constructed() || v_h.value_ptr() == nullptr)
    throw py::type_error(std::string(name) +
                         ": this gs.Philox was never initialised (made by Philox.__new__ "
                         "without __init__); make one with gs.Philox(seed)");
  return *static_cast<PhiloxState*>(v_h.value_ptr());
}

// Reserves nrows rows of the stream, or raises OverflowError naming the counter.
inline uint64_t reserve_rows(PhiloxState& rng, uint64_t nrows) {
  uint64_t start = 0;
  if (!rng.reserve(nrows, start)) {
    uint64_t low;
    bool at_end;
    rng.counter(low, at_end);
    const std::string now = at_end ? std::string("2**64") : std::to_string(low);
    const std::string msg = "rng counter overflow: reserving " + std::to_string(nrows) +
                            " rows at counter " + now +
                            " would pass 2**64, the end of the Philox stream for this seed";
    PyErr_SetString(PyExc_OverflowError, msg.c_str());
    throw py::error_already_set();
  }
  return start;
}

// The rows of one call: a key and the first row of the stream, and how to give them
// back when the kernel fails (std::bad_alloc of its scratch buffers).
struct Rows {
  PhiloxKey key;
  uint64_t first = 0;
  uint64_t count = 0;
  PhiloxState* philox = nullptr;  // the reserving Philox, or
  py::object generator, state;    // the Generator and its state before the draw,
  py::object after;               // and right after it

  // Gives the rows back: a Philox's if no reservation followed (unreserve), a
  // Generator's state if nothing was drawn from it since (its state is still `after`,
  // compared under the bit generator's lock): another thread's draws are never undone.
  void give_back() const {
    if (philox != nullptr) {
      philox->unreserve(first, count);
    } else if (generator) {
      const py::object bits = generator.attr("bit_generator");
      const py::object lock = bits.attr("lock");
      lock.attr("acquire")();
      try {
        if (same_state(bits.attr("state"), after)) bits.attr("state") = state;
      } catch (...) {
        lock.attr("release")();
        throw;
      }
      lock.attr("release")();
    }
  }

 private:
  // Whether two bit generator states (dicts of strings, ints and arrays) are equal.
  static bool same_state(py::handle a, py::handle b) {
    if (PyDict_Check(a.ptr()) && PyDict_Check(b.ptr())) {
      const auto da = py::reinterpret_borrow<py::dict>(a);
      const auto db = py::reinterpret_borrow<py::dict>(b);
      if (da.size() != db.size()) return false;
      for (const auto item : da)
        if (!db.contains(item.first) || !same_state(item.second, db[item.first])) return false;
      return true;
    }
    if (py::isinstance<py::array>(a) || py::isinstance<py::array>(b))
      return py::module_::import("numpy").attr("array_equal")(a, b).cast<bool>();
    const int eq = PyObject_RichCompareBool(a.ptr(), b.ptr(), Py_EQ);
    if (eq < 0) throw py::error_already_set();
    return eq == 1;
  }
};

// Takes nrows rows from `rng`: a gs.Philox (reserved atomically, advancing it), or a
// numpy.random.Generator, from which one 64-bit seed is drawn for a fresh Philox at
// counter 0 (rng.integers(0, 2**64, dtype=uint64), as gs.Philox(seed) of that draw).
// Called last, after every allocation of the call: a call that fails before it leaves
// either kind of generator as it was.
inline Rows take_rows(const py::object& rng, uint64_t nrows) {
  Rows rows;
  rows.count = nrows;
  if (py::isinstance<PhiloxState>(rng)) {
    rows.philox = &philox_state(rng, "rng");
    rows.key = rows.philox->key();
    rows.first = reserve_rows(*rows.philox, nrows);
    return rows;
  }
  const py::object np = py::module_::import("numpy");
  const py::object top =
      py::reinterpret_steal<py::object>(PyNumber_Lshift(py::int_(1).ptr(), py::int_(64).ptr()));
  rows.generator = rng;
  rows.state = rng.attr("bit_generator").attr("state");
  const uint64_t seed =
      py::int_(rng.attr("integers")(0, top, py::arg("dtype") = np.attr("uint64"))).cast<uint64_t>();
  // (no other thread draws in between: a scalar draw returns with the GIL held)
  rows.after = rng.attr("bit_generator").attr("state");
  rows.key = PhiloxState(seed, 0).key();
  return rows;
}

// Runs a kernel with the GIL released.  Ctrl-C stops it (see poll_interrupt): then the
// exception that the signal handler raised (KeyboardInterrupt) propagates from here;
// the rows were taken and the outputs may be partly written.  A kernel that cannot
// allocate its scratch buffers (MemoryError) has written nothing: its rows are given
// back first.
template <class Kernel>
void run_kernel(Kernel&& kernel, const Rows* rows = nullptr) {
  begin_call();
  try {
    // Safe without the GIL: kernels see raw pointers only, into arrays that the caller's
    // frame holds.
    py::gil_scoped_release release;
    kernel();
  } catch (const std::bad_alloc&) {
    if (rows != nullptr) rows->give_back();
    throw;
  }
  if (interrupted()) throw py::error_already_set();
}

// ----- results and arguments of the samplers ---------------------------------------
// out (a validated array of T), or a new array of a's shape.
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
inline std::vector<py::ssize_t> batch_shape(const py::array& a, int axis) {
  std::vector<py::ssize_t> shape;
  for (int d = 0; d < a.ndim(); ++d)
    if (d != axis) shape.push_back(a.shape(d));
  return shape;
}

// The Python layer passes native float32 or float64 arrays only; compare by kind and size,
// since an equivalent descriptor need not be the very object dtype::of returns.
inline bool is_double(const py::array& a) { return a.dtype().kind() == 'f' && a.itemsize() == 8; }

// ----- the registry of bindings --------------------------------------------------
// Each op file registers the function that adds its entry points to the module with
// GS_BINDING(fn) (at namespace scope, once per file); module.cpp calls them all when
// the module loads, in the order of registration (which does not matter: each
// registers names of its own).
using Binder = void (*)(py::module_&);
std::vector<Binder>& binders();  // defined in module.cpp
inline bool register_binder(Binder fn) {
  binders().push_back(fn);
  return true;
}
#define GS_BINDING(fn)                                        \
  [[maybe_unused]] static const bool gs_binding_registered_ = \
      ::gumbel_softmax::register_binder(&fn);

}  // namespace gumbel_softmax
