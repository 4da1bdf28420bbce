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

// The float16 / bfloat16 soft forward (gumbel_softmax, its log, hard, return_soft; no
// mask) with its conversions fused: per row, x (half bits, any step) to float32 in a
// row buffer, the float32 forward of that row (the forward's row path), its results
// rounded to half bits in y (and y_soft: hard with return_soft).  The same bits as
// half_to_float, the float32 forward and float_to_half one after the other.
struct HalfForwardArgs {
  const uint16_t* x = nullptr;
  RowSpec xs;
  uint16_t* y = nullptr;
  RowSpec ys;
  uint16_t* y_soft = nullptr;
  RowSpec ss;
  float inv_tau = 1;
  const float* inv_taus = nullptr;
  bool hard = false;
  bool log = false;
  bool bf16 = false;
  PhiloxKey key{};
  uint64_t first_row = 0;
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
  m.def(
      "gumbel_softmax_half",
      [](const py::array& x_bits, double tau, const py::object& inv_taus, bool hard, bool log,
         int axis, const py::object& rng, const py::array& y_bits, const py::object& soft_bits,
         bool bf16) {
        // x_bits, y_bits, soft_bits: uint16 views of the half arrays (y's and soft's
        // allocated by the caller before any rows are taken)
        auto x = py::reinterpret_borrow<py::array_t<uint16_t>>(x_bits);
        auto y = py::reinterpret_borrow<py::array_t<uint16_t>>(y_bits);
        HalfForwardArgs a;
        a.xs = rowspec_of(x, axis);
        a.ys = rowspec_of(y, axis);
        a.x = x.data();
        a.y = y.mutable_data();
        if (!soft_bits.is_none()) {
          auto s = py::reinterpret_borrow<py::array_t<uint16_t>>(soft_bits);
          a.ss = rowspec_of(s, axis);
          a.y_soft = s.mutable_data();
        }
        a.inv_tau = inverse_tau<float>(tau);
        a.inv_taus = per_row<float>(inv_taus);
        a.hard = hard;
        a.log = log;
        a.bf16 = bf16;
        const Rows rows = take_rows(rng, a.xs.nrows);
        a.key = rows.key;
        a.first_row = rows.first;
        run_kernel([&] { run(a); }, &rows);
      },
      py::arg("x_bits"), py::arg("tau"), py::arg("inv_taus"), py::arg("hard"), py::arg("log"),
      py::arg("axis"), py::arg("rng"), py::arg("y_bits"), py::arg("soft_bits"), py::arg("bf16"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/common.hpp"
#include "rows/pass1.hpp"
#include "rows/schedule.hpp"
#include "rows/softmax.hpp"
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

#ifdef GS_HAVE_VECTOR_EXT
// W half bits (uint16) <-> W 32-bit lanes.
typedef uint16_t VU16 __attribute__((vector_size(sizeof(lanes::VU32) / 2)));
GS_INLINE lanes::VU32 load_u16(const uint16_t* p) {
  VU16 h;
  std::memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, lanes::VU32);
}
GS_INLINE void store_u16(uint16_t* p, lanes::VU32 u) {
  const VU16 h = __builtin_convertvector(u, VU16);
  std::memcpy(p, &h, sizeof h);
}
#endif

// The vector float16 / bfloat16 <-> float32 conversions of the AVX targets (hw_*, kBf16
// picking the type; hw_half(bf16) says whether this CPU and target have them for that
// type), for contiguous elements.  The AVX-512 target has both, 16 elements a step, the
// last partial vector masked with AVX512BW/VL's 16-bit loads and stores (which the
// target requires): float16 by AVX-512F's vcvtph2ps / vcvtps2ph, bfloat16 by a shift in
// and half.hpp's f32_to_bf16_bits out (stored with vpmovdw).  The AVX2 target has
// float16 by F16C, 8 elements a step, whole vectors only; the baseline target none.
// Each returns how many of the n elements it converted; row_to_float / row_to_half
// convert the rest with half.hpp's integer conversions.  The same bits as half.hpp:
// half -> float32 is exact but for a float16 signalling NaN, which the hardware quiets
// (row_to_float's nan_payload), and float32 -> half rounds to nearest even, subnormals
// included.  The float16 conversions to half stop at the first vector holding a NaN,
// from which on half.hpp converts the rest (keeping NumPy's NaN payload rule).
#if defined(__AVX512F__)
template <bool kBf16>
GS_INLINE __m512 half_to_ps(__m256i h) {
  if constexpr (kBf16)
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else
    return _mm512_cvtph_ps(h);
}
template <bool kBf16>
int64_t hw_to_float(const uint16_t* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(
        dst + i, half_to_ps<kBf16>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  if (i < n) {
    const __mmask16 k = lanes::first_lanes16(n - i);
    _mm512_mask_storeu_ps(dst + i, k, half_to_ps<kBf16>(_mm256_maskz_loadu_epi16(k, src + i)));
  }
  return n;
}
// f: the float32 values of dst's 16 elements (the lanes of k only); false, writing
// nothing, where one of them is a NaN and the type float16.
template <bool kBf16>
GS_INLINE bool store_half(uint16_t* dst, __m512 f, __mmask16 k) {
  if constexpr (kBf16) {  // (integer operations only: no flag raised on a signalling NaN)
    const lanes::VU32 h = half::f32_to_bf16_bits(lanes::as_bits(lanes::VF32(f)));
    _mm512_mask_cvtepi32_storeu_epi16(dst, k, __m512i(h));
  } else {
    if (_mm512_mask_cmp_ps_mask(k, f, f, _CMP_UNORD_Q)) return false;
    _mm256_mask_storeu_epi16(dst, k, _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
  }
  return true;
}
// The float32 results of scale<kDivide>(src, 0, n, s, ..) (src * s, or src / s) rounded
// to the half type as row_to_half rounds them, for n contiguous elements, in one pass.
// (The soft sample's products are finite once its factor is, so its float16 rows never
// stop at a NaN; the test is kept for any other caller.)
template <bool kDivide, bool kBf16>
int64_t hw_scale_to_half(const float* src, int64_t n, float s, uint16_t* dst) {
  const __m512 vs = _mm512_set1_ps(s);
  auto at = [&](int64_t i, __mmask16 k) GS_LAMBDA_INLINE {
    const __m512 e = _mm512_maskz_loadu_ps(k, src + i);
    return store_half<kBf16>(dst + i, kDivide ? _mm512_div_ps(e, vs) : _mm512_mul_ps(e, vs), k);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    if (!at(i, 0xffff)) return i;
  if (i < n && !at(i, lanes::first_lanes16(n - i))) return i;
  return n;
}
// (Not hw_scale_to_half with s = 1: a multiplication with a subnormal operand takes a
// microcode assist, see docs/performance.md, "Small temperatures".)
template <bool kBf16>
int64_t hw_to_half(const float* src, int64_t n, uint16_t* dst) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    if (!store_half<kBf16>(dst + i, _mm512_loadu_ps(src + i), 0xffff)) return i;
  if (i < n) {
    const __mmask16 k = lanes::first_lanes16(n - i);
    if (!store_half<kBf16>(dst + i, _mm512_maskz_loadu_ps(k, src + i), k)) return i;
  }
  return n;
}
bool hw_half(bool) { return true; }
#elif defined(__AVX2__)
// F16C, 8 values an instruction, whole vectors only: every AVX2 CPU has it, but the
// targets' flags do not name it, so it is compiled for these functions alone and
// checked at run time (hw_half).  No bfloat16 (hw_half(true) is false): 0 converted.
template <bool kBf16>
__attribute__((target("f16c"))) int64_t hw_to_float(const uint16_t* src, int64_t n, float* dst) {
  if constexpr (kBf16) return 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  return i;
}
// The 8 float32 values f rounded to float16 at dst; false, writing nothing, where one
// of them is a NaN.
__attribute__((target("f16c"))) inline bool store_f16(uint16_t* dst, __m256 f) {
  if (_mm256_movemask_ps(_mm256_cmp_ps(f, f, _CMP_UNORD_Q))) return false;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
  return true;
}
template <bool kDivide, bool kBf16>
__attribute__((target("f16c"))) int64_t hw_scale_to_half(const float* src, int64_t n, float s,
                                                         uint16_t* dst) {
  if constexpr (kBf16) return 0;
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = _mm256_loadu_ps(src + i);
    if (!store_f16(dst + i, kDivide ? _mm256_div_ps(e, vs) : _mm256_mul_ps(e, vs))) break;
  }
  return i;
}
template <bool kBf16>
__attribute__((target("f16c"))) int64_t hw_to_half(const float* src, int64_t n, uint16_t* dst) {
  if constexpr (kBf16) return 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (!store_f16(dst + i, _mm256_loadu_ps(src + i))) break;
  return i;
}
bool hw_half(bool bf16) {
  static const bool has = __builtin_cpu_supports("f16c");
  return has && !bf16;
}
#else
template <bool kBf16>
int64_t hw_to_float(const uint16_t*, int64_t, float*) {
  return 0;
}
template <bool kDivide, bool kBf16>
int64_t hw_scale_to_half(const float*, int64_t, float, uint16_t*) {
  return 0;
}
template <bool kBf16>
int64_t hw_to_half(const float*, int64_t, uint16_t*) {
  return 0;
}
bool hw_half(bool) { return false; }
#endif

// n half values (step) -> float32 (contiguous), and back.  nan_payload: keep a NaN's
// payload as NumPy does (F16C quiets a signalling NaN), for results a user sees.
void row_to_float(const uint16_t* src, int64_t step, int64_t n, bool bf16, float* dst,
                  bool nan_payload = false) {
  int64_t i = 0;
  if (step == 1 && hw_half(bf16) && (bf16 || !nan_payload))  // (bfloat16 keeps payloads)
    i = bf16 ? hw_to_float<true>(src, n, dst) : hw_to_float<false>(src, n, dst);
#ifdef GS_HAVE_VECTOR_EXT
  using U = lanes::VU32;
  constexpr int W = lanes::width<lanes::VF32>();
  if (step == 1)
    for (; i + W <= n; i += W) {
      const U h = load_u16(src + i);
      const U f = bf16 ? half::bf16_to_f32_bits(h) : half::f16_to_f32_bits(h);
      std::memcpy(dst + i, &f, sizeof f);
    }
#endif
  for (; i < n; ++i) {
    const uint32_t h = src[i * step];
    dst[i] = lanes::from_bits(bf16 ? half::bf16_to_f32_bits(h) : half::f16_to_f32_bits(h));
  }
}
void row_to_half(const float* src, int64_t n, bool bf16, uint16_t* dst, int64_t step) {
  int64_t i = 0;
  if (step == 1 && hw_half(bf16))
    i = bf16 ? hw_to_half<true>(src, n, dst) : hw_to_half<false>(src, n, dst);
#ifdef GS_HAVE_VECTOR_EXT
  using U = lanes::VU32;
  constexpr int W = lanes::width<lanes::VF32>();
  if (step == 1)
    for (; i + W <= n; i += W) {
      const U u = lanes::load_bits<U>(src + i);
      store_u16(dst + i, bf16 ? half::f32_to_bf16_bits(u) : half::f32_to_f16_bits(u));
    }
#endif
  for (; i < n; ++i) {
    const uint32_t u = lanes::as_bits(src[i]);
    dst[i * step] =
        static_cast<uint16_t>(bf16 ? half::f32_to_bf16_bits(u) : half::f32_to_f16_bits(u));
  }
}

// Row by row (rows of any length; the Python layer sends rows of up to one segment):
// x converted into the thread's row buffer, then the forward's row path on it.
struct HalfForwardOp : Schedule {
  const HalfForwardArgs& a;
  const int64_t len;
  Scratch<float> scratch;  // per thread: x, then the one-hot; v, then the soft sample
  explicit HalfForwardOp(const HalfForwardArgs& args) : a(args), len(args.xs.len) {}

  void begin_rows(int nthreads) { scratch.resize(static_cast<int64_t>(nthreads) * 2 * len); }
  void row(int64_t r, int tid) const {
    float* xb = scratch.data() + static_cast<int64_t>(tid) * 2 * len;
    float* v = xb + len;
    const uint16_t* xr = a.x + row_offset(a.xs, r);
    row_to_float(xr, a.xs.step, len, a.bf16, xb);
    const float itau = a.inv_taus ? a.inv_taus[r] : a.inv_tau;
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    uint16_t* soft = a.hard ? a.y_soft : a.y;
    const RowSpec& sspec = a.hard ? a.ss : a.ys;
    // row r + 1's x and output, fetched meanwhile (see next_row_prefetch)
    const RowPrefetch<uint16_t> pf =
        next_row_prefetch(a.x, a.xs, soft ? soft : a.y, soft ? &sspec : &a.ys, r, xr);
    uint16_t* soft_row = soft ? soft + row_offset(sspec, r) : nullptr;
    RowStats<float> st;
    if (soft && !a.log && itau == 1.0f) {  // the tau = 1 path (see unit_exp_sum)
      if (a.hard) st = noisy_logits(xb, 1, 0, len, a.key, q, static_cast<float*>(nullptr), pf);
      soft_to_half<true>(v, unit_sum(xb, 1, len, a.key, q, v, pf), false, soft_row, sspec.step);
    } else {
      st = a.hard || itau == 0.0f ? noisy_logits(xb, 1, 0, len, a.key, q, soft ? v : nullptr, pf)
                                  : noisy_logits<float, false>(xb, 1, 0, len, a.key, q, v, pf);
      if (soft && st.defined() && !a.log) {
        bool tiny = false;
        const float s = soft_scale(v, len, st.max, itau, &tiny);
        soft_to_half<false>(v, s, tiny, soft_row, sspec.step);
      } else if (soft) {
        if (st.defined())
          softmax_from_noisy(v, len, st.max, itau, a.log, v, 1);
        else
          fill_nan(v, 1, len);
        row_to_half(v, len, a.bf16, soft_row, sspec.step);
      }
    }
    if (a.hard) {  // the one-hot (NaN: no defined sample), as the forward writes it
      if (st.defined()) {
        std::memset(xb, 0, static_cast<size_t>(len) * sizeof(float));
        xb[st.argmax] = 1.0f;
      } else {
        fill_nan(xb, 1, len);
      }
      row_to_half(xb, len, a.bf16, a.y + row_offset(a.ys, r), a.ys.step);
    }
  }

  // Pass 3 of a soft row into half bits in dst: y = e * s (e in v; s = 1 / sum, from
  // soft_scale), or y = a / s when kDivide (the tau = 1 path: a in v, s = sum); tiny as
  // scale's; s NaN: the row is NaN (as in softmax_from_noisy and unit_softmax_row).  A
  // contiguous row without tiny results, on a target with vector conversions for its
  // type, in one pass (hw_scale_to_half); the rest (AVX2's last partial vector, AVX2's
  // bfloat16, a step, tiny results, the baseline target) scaled in place in v, then
  // converted: the same bits either way.  (log_gumbel_softmax's rows: softmax_from_noisy, then
  // row_to_half.)
  template <bool kDivide>
  void soft_to_half(float* v, float s, bool tiny, uint16_t* dst, int64_t step) const {
    if (s != s) {
      fill_nan(v, 1, len);
      return row_to_half(v, len, a.bf16, dst, step);
    }
    int64_t i = 0;
    if (step == 1 && !tiny && hw_half(a.bf16))
      i = a.bf16 ? hw_scale_to_half<kDivide, true>(v, len, s, dst)
                 : hw_scale_to_half<kDivide, false>(v, len, s, dst);
    if (i == len) return;
    scale<kDivide>(v, i, len, s, v, 1, tiny);
    row_to_half(v + i, len - i, a.bf16, dst + i * step, step);
  }
};

}  // namespace

void run(const HalfForwardArgs& a) {
  HalfForwardOp op(a);
  run_schedule<float>(op, a.xs.nrows, a.xs.len);
}

void run(const HalfToFloatArgs& a) {
  for_blocks(a.n, [&](int64_t begin, int64_t end) {
    row_to_float(a.src + begin, 1, end - begin, a.bf16, a.dst + begin, true);
  });
}

void run(const FloatToHalfArgs& a) {
  for_blocks(a.n, [&](int64_t begin, int64_t end) {
    row_to_half(a.src + begin, end - begin, a.bf16, a.dst + begin, 1);
  });
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
