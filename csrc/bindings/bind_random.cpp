// gs.Philox (the generator state).  (gs.philox4x32 and the noise: ops/noise.cpp.)
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "common.hpp"
#include "gumbel_softmax/kernels.hpp"
#include "philox_state.hpp"

namespace gumbel_softmax {

namespace {

// A Python integer in [0, 2**64) (anything with __index__), or TypeError/ValueError
// naming the argument.
uint64_t to_u64(py::handle obj, const char* name) {
  if (!PyIndex_Check(obj.ptr()) || PyBool_Check(obj.ptr())) {
    throw py::type_error(std::string(name) + " must be an integer in [0, 2**64), got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  const int negative = PyObject_RichCompareBool(v.ptr(), py::int_(0).ptr(), Py_LT);
  py::int_ top = py::reinterpret_steal<py::int_>(PyLong_FromUnsignedLongLong(UINT64_MAX));
  const int too_big = PyObject_RichCompareBool(v.ptr(), top.ptr(), Py_GT);
  if (negative < 0 || too_big < 0) throw py::error_already_set();
  if (negative || too_big) {
    throw py::value_error(std::string(name) + " must be in [0, 2**64), got " +
                          std::string(py::str(v)));
  }
  return PyLong_AsUnsignedLongLong(v.ptr());
}

// The state of a method's self (philox_state: TypeError for an object never initialised).
PhiloxState& state(py::handle self) { return philox_state(self, "Philox"); }

py::int_ counter_of(const PhiloxState& s) {
  uint64_t low;
  bool at_end;
  s.counter(low, at_end);
  if (at_end)
    return py::reinterpret_steal<py::int_>(PyNumber_Lshift(py::int_(1).ptr(), py::int_(64).ptr()));
  return py::int_(low);
}

// The Philox of a pickled state (seed, counter) (__setstate__: pickles made by earlier
// versions; gs.Philox pickles itself with __reduce_ex__, python/gumbel_softmax/_api.py).
// A counter of 2**64 (exhausted) round-trips through reserve; any other counter is an
// integer in [0, 2**64) (to_u64).
PhiloxState* from_state(py::tuple t) {
  if (t.size() != 2) throw py::value_error("invalid Philox state");
  const py::object c = t[1];
  py::int_ top =
      py::reinterpret_steal<py::int_>(PyNumber_Lshift(py::int_(1).ptr(), py::int_(64).ptr()));
  if (PyLong_Check(c.ptr()) && c.equal(top)) {
    auto* p = new PhiloxState(to_u64(t[0], "seed"), UINT64_MAX);
    uint64_t start;
    p->reserve(1, start);
    return p;
  }
  return new PhiloxState(to_u64(t[0], "seed"), to_u64(c, "counter"));
}

}  // namespace

void bind_random(py::module_& m) {
  py::class_<PhiloxState>(
      m, "Philox", R"doc(Philox4x32-10 counter-based generator (see gumbel_softmax.Philox).)doc")
      .def(py::init([](py::object seed, py::object counter) {
             const uint64_t s = seed.is_none() ? os_entropy_seed() : to_u64(seed, "seed");
             return new PhiloxState(s, to_u64(counter, "counter"));
           }),
           py::arg("seed") = py::none(), py::kw_only(), py::arg("counter") = 0)
      .def_property_readonly(
          "seed", [](py::handle self) { return state(self).seed(); }, "The 64-bit seed.")
      .def_property_readonly(
          "key",
          [](py::handle self) {
            const PhiloxKey k = state(self).key();
            return py::make_tuple(k.k0, k.k1);
          },
          "The Philox key (seed & 0xffffffff, seed >> 32).")
      .def_property_readonly(
          "counter", [](py::handle self) { return counter_of(state(self)); },
          "Rows consumed so far: the next call starts at this row.")
      .def(
          "reserve",
          [](py::handle self, py::object n) {
            PhiloxState& s = state(self);
            const uint64_t rows = to_u64(n, "n");
            // n = 0 reserves nothing and returns the counter, which may be 2**64.
            if (rows == 0) return counter_of(s);
            return py::int_(reserve_rows(s, rows));
          },
          py::arg("n"), "Atomically reserve n rows; returns the first. OverflowError past 2**64.")
      .def(
          "_unreserve",
          [](py::handle self, py::object start, py::object n) {
            return state(self).unreserve(to_u64(start, "start"), to_u64(n, "n"));
          },
          py::arg("start"), py::arg("n"),
          "Give back rows [start, start + n) of a reserve() whose call failed, if no "
          "reservation followed it; returns whether it did.")
      .def("__copy__", [](py::handle self) { return PhiloxState(state(self)); })
      .def(
          "__deepcopy__", [](py::handle self, py::object) { return PhiloxState(state(self)); },
          py::arg("memo"))
      .def("__eq__",
           [](py::handle self, py::object other) -> py::object {
             if (!py::isinstance<PhiloxState>(other))
               return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             const PhiloxState& a = state(self);
             const PhiloxState& b = state(other);
             return py::bool_(a.seed() == b.seed() && counter_of(a).equal(counter_of(b)));
           })
      .def("__hash__",
           [](py::handle) -> py::object {
             throw py::type_error("unhashable type: 'Philox' (its counter changes)");
           })
      .def("__repr__",
           [](py::handle self) {
             const PhiloxState& s = state(self);
             return "Philox(seed=" + std::to_string(s.seed()) +
                    ", counter=" + std::string(py::str(counter_of(s))) + ")";
           })
      .def(py::pickle(
          [](py::handle self) {
            const PhiloxState& s = state(self);
            return py::make_tuple(s.seed(), counter_of(s));
          },
          &from_state));
}

}  // namespace gumbel_softmax
