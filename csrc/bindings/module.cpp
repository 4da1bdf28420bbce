// gumbel_softmax._core: each binding file adds one area of the API.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "gumbel_softmax/kernels.hpp"

namespace py = pybind11;

namespace gumbel_softmax {
void bind_random(py::module_& m);
void bind_sampling(py::module_& m);
void bind_math(py::module_& m);
}  // namespace gumbel_softmax

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled kernels of gumbel_softmax; use the functions of the package itself.";
  gumbel_softmax::bind_random(m);
  gumbel_softmax::bind_sampling(m);
  gumbel_softmax::bind_math(m);
  m.def("get_num_threads", &gumbel_softmax::max_threads);
  m.def("set_num_threads", &gumbel_softmax::set_max_threads, py::arg("n"));
  m.def("_last_team_size", &gumbel_softmax::last_team_size);
  m.attr("have_openmp") = gumbel_softmax::have_openmp();
  m.def("cpu_target", [] { return std::string(gumbel_softmax::cpu_target()); });
  m.def("cpu_targets", &gumbel_softmax::cpu_targets);
  m.def("target_warning", [] { return gumbel_softmax::target_warning(); });
  m.def("_set_short_rows", &gumbel_softmax::set_short_rows, py::arg("on"),
        "Testing aid: the across-rows path for rows of <= 32 elements on or off.");
}
