// Helpers shared by the binding files: NumPy array -> RowSpec, row reservation.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gumbel_softmax/kernels.hpp"
#include "philox_state.hpp"

namespace gumbel_softmax {
namespace py = pybind11;

// Element strides of an aligned array (NumPy's ALIGNED flag guarantees that byte
// strides are multiples of the item size).
inline RowSpec rowspec_of(const py::array& a, int axis) {
  const int nd = static_cast<int>(a.ndim());
  if (nd > RowSpec::kMaxDims) throw py::value_error("arrays of more than 64 dimensions are not supported");
  std::vector<int64_t> shape(nd), strides(nd);
  const int64_t item = static_cast<int64_t>(a.itemsize());
  for (int d = 0; d < nd; ++d) {
    shape[d] = static_cast<int64_t>(a.shape(d));
    strides[d] = static_cast<int64_t>(a.strides(d)) / item;
  }
  return make_rowspec(nd, shape.data(), strides.data(), axis);
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

}  // namespace gumbel_softmax
