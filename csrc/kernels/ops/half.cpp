// Op "half": float16 / bfloat16 <-> float32 conversions (the float16 and bfloat16
// dtypes of the samplers go through float32).
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// float16 / bfloat16 (bits) <-> float32 for n contiguous elements (see simd/half.hpp).
struct HalfToFloatArgs {
  const uint16_t* src = nullptr;
  float* dst = nullptr;
  int64_t n = 0;
  bool bf16 = false;
};
struct FloatToHalfArgs {
  const float* src = nullptr;
  uint16_t* dst = nullptr;
  int64_t n = 0;
  bool bf16 = false;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

// float16 / bfloat16 bits (uint16, C-contiguous) <-> float32, as NumPy / ml_dtypes cast.
void bind(py::module_& m) {
  m.def(
      "half_to_float",
      [](py::array_t<uint16_t, py::array::c_style> src, bool bf16) {
        py::array_t<float> dst(std::vector<py::ssize_t>(src.shape(), src.shape() + src.ndim()));
        const uint16_t* s = src.data();
        float* d = dst.mutable_data();
        const int64_t n = static_cast<int64_t>(src.size());
        run_kernel([&] { run(HalfToFloatArgs{s, d, n, bf16}); });
        return dst;
      },
      py::arg("src"), py::arg("bf16"));
  m.def(
      "float_to_half",
      [](py::array_t<float, py::array::c_style> src, bool bf16, const py::object& out) {
        // out: None, or a C-contiguous uint16 array of src's size, allocated by a caller
        // that must not allocate after its kernel has taken rows.
        py::array_t<uint16_t> dst = out.is_none()
                                        ? py::array_t<uint16_t>(std::vector<py::ssize_t>(
                                              src.shape(), src.shape() + src.ndim()))
                                        : py::reinterpret_borrow<py::array_t<uint16_t>>(out);
        if (dst.size() != src.size() || !(dst.flags() & py::array::c_style))
          throw py::value_error("float_to_half: out must be C-contiguous uint16 of src's size");
        const float* s = src.data();
        uint16_t* d = dst.mutable_data();
        const int64_t n = static_cast<int64_t>(src.size());
        run_kernel([&] { run(FloatToHalfArgs{s, d, n, bf16}); });
        return dst;
      },
      py::arg("src"), py::arg("bf16"), py::arg("out") = py::none());
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/common.hpp"
#include "simd/half.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// Elements per block of a conversion (blocks are spread over the threads).
constexpr int64_t kConvertBlock = int64_t{1} << 16;

template <class Body>
void for_blocks(int64_t n, Body&& body) {
  const int64_t nblocks = (n + kConvertBlock - 1) / kConvertBlock;
  for_rows(nblocks, threads_for(nblocks, std::min(n, kConvertBlock)),
           [&](int64_t b, int) { body(b * kConvertBlock, std::min(n, (b + 1) * kConvertBlock)); });
}

}  // namespace

void run(const HalfToFloatArgs& a) {
  const uint16_t* src = a.src;
  float* dst = a.dst;
  const bool bf16 = a.bf16;
  const int64_t n = a.n;
  for_blocks(n, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
#ifdef GS_HAVE_VECTOR_EXT
    using U = lanes::VU32;
    constexpr int W = lanes::width<lanes::VF32>();
    for (; i + W <= end; i += W) {
      U h;
      for (int j = 0; j < W; ++j) h[j] = src[i + j];
      const U f = bf16 ? half::bf16_to_f32_bits(h) : half::f16_to_f32_bits(h);
      std::memcpy(dst + i, &f, sizeof f);
    }
#endif
    for (; i < end; ++i) {
      const uint32_t h = src[i];
      dst[i] = lanes::from_bits(bf16 ? half::bf16_to_f32_bits(h) : half::f16_to_f32_bits(h));
    }
  });
}

void run(const FloatToHalfArgs& a) {
  const float* src = a.src;
  uint16_t* dst = a.dst;
  const bool bf16 = a.bf16;
  const int64_t n = a.n;
  for_blocks(n, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
#ifdef GS_HAVE_VECTOR_EXT
    using U = lanes::VU32;
    constexpr int W = lanes::width<lanes::VF32>();
    for (; i + W <= end; i += W) {
      const U u = lanes::load_bits<U>(src + i);
      const U h = bf16 ? half::f32_to_bf16_bits(u) : half::f32_to_f16_bits(u);
      for (int j = 0; j < W; ++j) dst[i + j] = static_cast<uint16_t>(h[j]);
    }
#endif
    for (; i < end; ++i) {
      const uint32_t u = lanes::as_bits(src[i]);
      dst[i] = static_cast<uint16_t>(bf16 ? half::f32_to_bf16_bits(u) : half::f32_to_f16_bits(u));
    }
  });
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
