// gumbel_softmax._core: bind_random.cpp adds the generator (gs.Philox); every op file
// (csrc/kernels/ops/*.cpp, compiled here with GS_BIND) registers its own entry points
// (GS_BINDING, see bindings/common.hpp); the thread and target controls are here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "common.hpp"
#include "gumbel_softmax/kernels.hpp"

namespace py = pybind11;

namespace gumbel_softmax {
void bind_random(py::module_& m);

std::vector<Binder>& binders() {
  static std::vector<Binder> all;
  return all;
}

namespace {
// Python runs signal handlers in the main thread only; a call made there asks it about
// every 50 ms (poll_interrupt) whether a handler raised, e.g. KeyboardInterrupt on
// Ctrl-C.  Calls on other threads are not polled (their handlers never run there).
unsigned long g_main_thread = 0;

// A fork child's main thread is the thread that forked (Python makes it so): a child
// forked from another thread of the parent polls there.
void main_thread_after_fork() { g_main_thread = PyThread_get_thread_ident(); }

bool signals_raised() {
  if (PyThread_get_thread_ident() != g_main_thread) return false;
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}
}  // namespace
}  // namespace gumbel_softmax

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled kernels of gumbel_softmax; use the functions of the package itself.";
  gumbel_softmax::bind_random(m);
  for (const auto& bind : gumbel_softmax::binders()) bind(m);
  gumbel_softmax::g_main_thread =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  gumbel_softmax::set_interrupt_hook(&gumbel_softmax::signals_raised);
  gumbel_softmax::install_fork_handler();
#if !defined(_WIN32)
  pthread_atfork(nullptr, nullptr, &gumbel_softmax::main_thread_after_fork);
#endif
  m.def("get_num_threads", &gumbel_softmax::max_threads);
  m.def("thread_limit", &gumbel_softmax::thread_limit,
        "The most threads a call uses: 4 per processor available to the process.");
  m.def("_in_fork_child", &gumbel_softmax::in_fork_child,
        "True in a child process made by fork(): calls run on one thread there.");
  m.def("set_num_threads", &gumbel_softmax::set_max_threads, py::arg("n"));
  m.def("_last_team_size", &gumbel_softmax::last_team_size);
  m.attr("have_openmp") = gumbel_softmax::have_openmp();
  m.def("cpu_target", [] { return std::string(gumbel_softmax::cpu_target()); });
  m.def("cpu_targets", &gumbel_softmax::cpu_targets);
  m.def("target_warning", [] { return gumbel_softmax::target_warning(); });
}
