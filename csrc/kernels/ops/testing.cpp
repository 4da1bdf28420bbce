// Testing aids: op "eval" (a math primitive elementwise on the target's lanes) and
// op "set_short_rows" (the short-row path on or off).
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Testing aid: a math primitive elementwise on the target's lanes (see ops/testing.cpp):
// which = 0 log, 1 exp, 2 log1p_reduced, 3 bits_to_gumbel (of the input's bits), 4
// exp_nonpos (exp_scaled_nonpos<0>, the softmax's exp: inputs <= 0, -inf or NaN).
template <class T>
struct EvalArgs {
  int which = 0;
  const T* in = nullptr;
  T* out = nullptr;
  int64_t n = 0;
};

// Testing aid: turns the across-rows path for short rows on or off (default on).
struct ShortRowsArgs {
  bool on = true;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include <cstring>
#include <string>

#include "bindings/common.hpp"
#include "kernels/float_env.hpp"

namespace gumbel_softmax {
namespace {

// Private entry points that evaluate the kernels' math primitives elementwise on the
// active SIMD target's lanes, so that the tests can bound their error against NumPy on
// every target (tests/test_vmath.py, tests/test_targets.py).
int primitive_index(const std::string& name) {
  if (name == "log") return 0;
  if (name == "exp") return 1;
  if (name == "log1p_reduced") return 2;
  if (name == "exp_nonpos") return 4;
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

void bind(py::module_& m) {
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
  m.def(
      "_set_short_rows", [](bool on) { run(ShortRowsArgs{on}); }, py::arg("on"),
      "Testing aid: the across-rows path for rows of <= 32 elements on or off.");
  m.def(
      "_set_flush_denormal",
      [](bool on) {
#ifdef GS_HAVE_MXCSR
        constexpr unsigned kFlush = 0x8000u | 0x0040u;  // flush-to-zero, denormals-are-zero
        _mm_setcsr(on ? (_mm_getcsr() | kFlush) : (_mm_getcsr() & ~kFlush));
        return true;
#else
        (void)on;
        return false;
#endif
      },
      py::arg("on"),
      "Testing aid: flush-to-zero and denormals-are-zero on or off in the calling thread "
      "(as torch.set_flush_denormal); False where the CPU has no MXCSR.");
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/common.hpp"
#include "rows/short_rows.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// Elementwise evaluation of one math primitive on this target's lanes (tests bound their
// error and compare targets): 0 = log, 1 = exp, 2 = log1p_reduced, 3 = bits_to_gumbel
// (input: the bits, as float32 / float64 of the same width), 4 = exp_scaled_nonpos<0>.
template <class T>
void eval_kernel(const EvalArgs<T>& a) {
  const int which = a.which;
  const T* in = a.in;
  T* out = a.out;
  const int64_t n = a.n;
  auto one = [which](auto x) {
    using V = decltype(x);
    switch (which) {
      case 0:
        return vmath::log(x);
      case 1:
        return vmath::exp(x);
      case 2:
        return vmath::log1p_reduced(x);
      case 4:
        return vmath::exp_scaled_nonpos<0>(x);
      default:
        return bits_to_gumbel<V>(lanes::as_bits(x));
    }
  };
  int64_t i = 0;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  for (; i + kW<T> <= n; i += kW<T>) lanes::store(out + i, one(lanes::load<V>(in + i)));
#endif
  for (; i < n; ++i) out[i] = one(in[i]);
}

}  // namespace

GS_KERNEL(EvalArgs, eval_kernel)

void run(const ShortRowsArgs& a) { g_short_rows.store(a.on, std::memory_order_relaxed); }

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
