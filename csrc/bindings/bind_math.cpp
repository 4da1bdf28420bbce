// Private entry points that evaluate the kernels' math primitives elementwise on the
// active SIMD target's lanes, so that the tests can bound their error against NumPy on
// every target (tests/test_vmath.py, tests/test_targets.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "common.hpp"
#include "gumbel_softmax/kernels.hpp"

namespace gumbel_softmax {
namespace py = pybind11;

namespace {

int primitive_index(const std::string& name) {
  if (name == "log") return 0;
  if (name == "exp") return 1;
  if (name == "log1p_reduced") return 2;
  throw py::value_error("unknown primitive " + name);
}

template <class T>
py::array_t<T> eval(int which, py::array_t<T, py::array::c_style | py::array::forcecast> x) {
  py::array_t<T> out(x.size());
  const T* in = x.data();
  T* o = out.mutable_data();
  const int64_t n = static_cast<int64_t>(x.size());
  run_kernel([&] { run(EvalArgs<T>{which, in, o, n}); });
  return out;
}

// bits_to_gumbel: the bits travel as a float array of the same width.
template <class Bits, class T>
py::array_t<T> noise(py::array_t<Bits, py::array::c_style | py::array::forcecast> bits) {
  py::array_t<T> as_float(bits.size());
  std::memcpy(as_float.mutable_data(), bits.data(), bits.size() * sizeof(T));
  return eval<T>(3, as_float);
}

}  // namespace

void bind_math(py::module_& m) {
  m.def(
      "_eval_f32",
      [](const std::string& name, py::array_t<float, py::array::c_style | py::array::forcecast> x) {
        return eval<float>(primitive_index(name), x);
      },
      py::arg("name"), py::arg("x"));
  m.def(
      "_eval_f64",
      [](const std::string& name,
         py::array_t<double, py::array::c_style | py::array::forcecast> x) {
        return eval<double>(primitive_index(name), x);
      },
      py::arg("name"), py::arg("x"));
  m.def("_noise_f32", &noise<uint32_t, float>, py::arg("bits"),
        "bits_to_gumbel on uint32 words (the float32 map), on the active target");
  m.def("_noise_f64", &noise<uint64_t, double>, py::arg("bits"),
        "bits_to_gumbel on uint64 values word(2c) | word(2c+1) << 32 (the float64 map)");
}

}  // namespace gumbel_softmax
