// Op "half": float16 / bfloat16 <-> float32 conversions (the float16 and bfloat16
// dtypes of the samplers go through float32).  Compiled once per SIMD target.
#include "simd/half.hpp"
#include "rows/common.hpp"

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
