// Op "noise": the raw noise of the stream (gs.gumbel and the logistic noise), and the
// Philox blocks themselves (gs.philox4x32).
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// Noise: the noise of rows first_row, ... of the stream into out.
template <class T>
struct NoiseArgs {
  T* out = nullptr;
  RowSpec os;
  Noise kind = Noise::gumbel;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// out[i] = philox4x32_10(counters[i], key) for n blocks of 4 words.
struct PhiloxBlocksArgs {
  const uint32_t* counters = nullptr;
  int64_t n = 0;
  PhiloxKey key{};
  uint32_t* out = nullptr;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include <pybind11/stl.h>

#include <vector>

#include "bindings/common.hpp"
#include "bindings/fast_path.hpp"

namespace gumbel_softmax {
namespace {

template <class T>
py::array noise_impl(const std::vector<int64_t>& shape, Noise kind, const py::object& rng,
                     py::object out) {
  py::array_t<T> result;
  if (out.is_none()) {
    result = py::array_t<T>(shape);
  } else {
    result = py::reinterpret_borrow<py::array_t<T>>(out);
  }
  const int nd = static_cast<int>(shape.size());
  NoiseArgs<T> a;
  a.os = rowspec_of(result, nd - 1);
  a.out = result.mutable_data();
  a.kind = kind;
  const Rows rows = take_rows(rng, a.os.nrows);  // last: a failed call takes none
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(result);
}

// ----- the fast path of gs.gumbel / gs.logistic (see bindings/fast_path.hpp) ---------
// Taken when: shape is an int or a tuple of 1 .. 32 ints (exact ints, each >= 0, rows
// of at most 2**31 - 1 elements, a result NumPy can address); dtype is None, float32 or
// float64 (the scalar types or their native dtypes); rng as the samplers' fast path;
// out is None.  Anything else is "not taken" and _ops.noise runs its general path.

// The NumPy type number of a fast dtype, or 0.
int fast_dtype(PyObject* o) {
  if (o == Py_None) return fast::detail::npy_api::NPY_FLOAT_;
  for (int num : {fast::detail::npy_api::NPY_FLOAT_, fast::detail::npy_api::NPY_DOUBLE_}) {
    // the builtin descriptor (a singleton that NumPy never frees) and its scalar type
    PyObject* d = fast::api().PyArray_DescrFromType_(num);
    if (d == nullptr) throw py::error_already_set();
    Py_DECREF(d);
    if (o == d || o == fast::detail::array_descriptor_proxy(d)->typeobj) return num;
  }
  return 0;
}

// shape (see above) into dims, for items of itemsize bytes; false: not taken.
bool fast_shape(PyObject* o, int itemsize, int& nd, Py_ssize_t* dims) {
  PyObject* const* items = &o;
  Py_ssize_t n = 1;
  if (PyTuple_CheckExact(o)) {
    items = reinterpret_cast<PyTupleObject*>(o)->ob_item;
    n = PyTuple_GET_SIZE(o);
  } else if (!PyLong_CheckExact(o)) {
    return false;
  }
  if (n < 1 || n > 32) return false;  // (NumPy 1's limit on dimensions: the general path)
  Py_ssize_t bytes = itemsize;        // of the result, zeros counted as ones (check_result_bytes)
  for (Py_ssize_t k = 0; k < n; ++k) {
    if (!PyLong_CheckExact(items[k])) return false;  // (bool and np.int64: the general path)
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(items[k], &overflow);
    if (overflow || v < 0) return false;
    dims[k] = static_cast<Py_ssize_t>(v);
    if (__builtin_mul_overflow(bytes, std::max<Py_ssize_t>(dims[k], 1), &bytes)) return false;
  }
  if (dims[n - 1] > fast::kMaxRow) return false;
  nd = static_cast<int>(n);
  return true;
}

template <class T>
py::object noise_fast_impl(int nd, const Py_ssize_t* dims, Noise kind, const fast::Rng& rng) {
  constexpr int num =
      sizeof(T) == 8 ? fast::detail::npy_api::NPY_DOUBLE_ : fast::detail::npy_api::NPY_FLOAT_;
  py::array result = fast::new_array(num, nd, dims);
  NoiseArgs<T> a;
  a.os = fast::rowspec(result, nd - 1);
  a.out = static_cast<T*>(result.mutable_data());
  a.kind = kind;
  const Rows rows = fast::take_rows(rng, a.os.nrows);  // last: a failed call takes none
  a.key = rows.key;
  a.first_row = rows.first;
  fast::run([&] { run(a); }, rows, static_cast<int64_t>(result.size()));
  return std::move(result);
}

// _core.noise_fast(shape, dtype, rng, out, logistic): the noise, or None (not taken).
PyObject* noise_fast(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  return fast::guarded([&]() -> PyObject* {
    if (nargs != 5) throw py::type_error("noise_fast takes 5 arguments");
    const int num = fast_dtype(args[1]);
    const bool is_double = num == fast::detail::npy_api::NPY_DOUBLE_;
    int nd = 0;
    Py_ssize_t dims[32];
    fast::Rng rng;
    bool logistic = false;
    if (num == 0 || !fast_shape(args[0], is_double ? 8 : 4, nd, dims) ||
        !fast::rng_of(args[2], rng) || args[3] != Py_None || !fast::flag_of(args[4], logistic))
      return fast::not_taken();
    const Noise kind = logistic ? Noise::logistic : Noise::gumbel;
    py::object r = is_double ? noise_fast_impl<double>(nd, dims, kind, rng)
                             : noise_fast_impl<float>(nd, dims, kind, rng);
    return r.release().ptr();
  });
}

PyMethodDef g_noise_fast_def = {
    "noise_fast", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&noise_fast)),
    METH_FASTCALL, "The common case of gumbel and logistic, or None."};

void bind(py::module_& m) {
  fast::add_function(m, g_noise_fast_def);
  m.def(
      "philox4x32",
      [](py::array_t<uint32_t, py::array::c_style> counters, uint32_t k0, uint32_t k1) {
        py::array_t<uint32_t> out(
            std::vector<py::ssize_t>(counters.shape(), counters.shape() + counters.ndim()));
        const int64_t n = static_cast<int64_t>(counters.size() / 4);
        const uint32_t* c = counters.data();
        uint32_t* o = out.mutable_data();
        run_kernel([&] { run(PhiloxBlocksArgs{c, n, PhiloxKey{k0, k1}, o}); });
        return out;
      },
      py::arg("counters"), py::arg("k0"), py::arg("k1"));
  m.def(
      "noise",
      [](std::vector<int64_t> shape, bool is_double, bool logistic, const py::object& rng,
         py::object out) {
        const Noise kind = logistic ? Noise::logistic : Noise::gumbel;
        return is_double ? noise_impl<double>(shape, kind, rng, out)
                         : noise_impl<float>(shape, kind, rng, out);
      },
      py::arg("shape"), py::arg("is_double"), py::arg("logistic"), py::arg("rng"), py::arg("out"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/pass1.hpp"
#include "rows/schedule.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

template <class T>
struct NoiseOp : Schedule {
  static constexpr bool kShortRows = true;
  static constexpr bool kSplitRows = true;
  static constexpr bool kTiles = true;
  const NoiseArgs<T>& a;
  const RowSpec& o;
  explicit NoiseOp(const NoiseArgs<T>& args) : a(args), o(args.os) {}

  uint64_t row_q(int64_t r) const { return a.first_row + static_cast<uint64_t>(r); }
  // Elements [begin, end) of absolute row q into dst (begin a multiple of kChunk).
  void fill(uint64_t q, int64_t begin, int64_t end, T* dst, int64_t step) const {
    ChunkBuffers<T> buf;
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int64_t n = std::min(kChunk, end - c0);
      noise_chunk(a.key, q, c0, n, buf.words, buf.g, a.kind);
      if (step == 1)
        std::memcpy(dst + c0, buf.g, static_cast<size_t>(n) * sizeof(T));
      else
        for (int64_t i = 0; i < n; ++i) dst[(c0 + i) * step] = buf.g[i];
    }
  }
#ifdef GS_HAVE_VECTOR_EXT
  void short_group(int64_t r0, int64_t n) const {
    ShortNoise<T> noise;
    const int64_t gs = noise.fill(a.key, a.first_row, r0, n, o.len,
                                  a.kind == Noise::logistic ? Draw::logistic : Draw::gumbel);
    for (int64_t i = 0; i < n; ++i) {
      T* row = a.out + row_offset(o, r0 + i);
      for (int64_t c = 0; c < o.len; ++c) row[c * o.step] = noise.g[i * gs + c];
    }
  }
#endif
  void split_row(int64_t r) const {
    for_segments(o.len, [&](int64_t, int64_t begin, int64_t end) {
      fill(row_q(r), begin, end, a.out + row_offset(o, r), o.step);
    });
  }
  bool strided() const { return o.step != 1; }
  int64_t tile_elements() const { return kTileRows * o.len; }
  void tile(int64_t r0, int64_t g, T* tile) const {
    for (int64_t i = 0; i < g; ++i) fill(row_q(r0 + i), 0, o.len, tile + i * o.len, 1);
    scatter_tile(a.out, o, r0, g, tile);
  }
  void row(int64_t r, int) const { fill(row_q(r), 0, o.len, a.out + row_offset(o, r), o.step); }
};

template <class T>
void noise_kernel(const NoiseArgs<T>& a) {
  NoiseOp<T> op(a);
  run_schedule<T>(op, a.os.nrows, a.os.len);
}

}  // namespace

GS_KERNEL(NoiseArgs, noise_kernel)

void run(const PhiloxBlocksArgs& a) {
  for (int64_t i = 0; i < a.n; ++i) philox::block(a.counters + 4 * i, a.key, a.out + 4 * i);
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
