// Private entry points that evaluate the kernels' math primitives elementwise, so that
// the tests can bound their error against NumPy (tests/test_vmath.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "gumbel_softmax/gumbel.hpp"
#include "gumbel_softmax/vmath.hpp"

namespace gumbel_softmax {
namespace py = pybind11;

namespace {

template <class T>
py::array_t<T> eval(const std::string& name, py::array_t<T, py::array::c_style | py::array::forcecast> x) {
  py::array_t<T> out(x.size());
  const T* in = x.data();
  T* o = out.mutable_data();
  const int64_t n = static_cast<int64_t>(x.size());
  if (name == "log") {
    for (int64_t i = 0; i < n; ++i) o[i] = vmath::log(in[i]);
  } else if (name == "exp") {
    for (int64_t i = 0; i < n; ++i) o[i] = vmath::exp(in[i]);
  } else if (name == "log1p_reduced") {
    for (int64_t i = 0; i < n; ++i) o[i] = vmath::log1p_reduced(in[i]);
  } else {
    throw py::value_error("unknown primitive " + name);
  }
  return out;
}

template <class Bits, class T>
py::array_t<T> noise(py::array_t<Bits, py::array::c_style | py::array::forcecast> bits) {
  py::array_t<T> out(bits.size());
  const Bits* b = bits.data();
  T* o = out.mutable_data();
  const int64_t n = static_cast<int64_t>(bits.size());
  {
    py::gil_scoped_release release;  // raw pointers only; arrays held by this frame
    for (int64_t i = 0; i < n; ++i) o[i] = bits_to_gumbel<T>(b[i]);
  }
  return out;
}

}  // namespace

void bind_math(py::module_& m) {
  m.def("_eval_f32", &eval<float>, py::arg("name"), py::arg("x"));
  m.def("_eval_f64", &eval<double>, py::arg("name"), py::arg("x"));
  m.def("_noise_f32", &noise<uint32_t, float>, py::arg("bits"),
        "bits_to_gumbel on uint32 words (the float32 map)");
  m.def("_noise_f64", &noise<uint64_t, double>, py::arg("bits"),
        "bits_to_gumbel on uint64 values word(2c) | word(2c+1) << 32 (the float64 map)");
}

}  // namespace gumbel_softmax
