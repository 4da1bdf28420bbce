// Per-target row machinery, part 7: the Gumbel perturbation given its argmax, shared by
// conditional_gumbel (ops/conditional_gumbel.cpp) and the Gumbel-Rao backward
// (ops/gumbel_rao.cpp): the stable log1p of the truncation, a row's logsumexp summed as
// the samplers sum (and a short-row group's), and the noise of one element.
#pragma once

#include "rows/pass1.hpp"
#include "rows/softmax.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// log(1 + t) for t in [0, 1] (lanes or a scalar): log1p_reduced up to t = 1/2, above it
// 1 + t = 2 (1 + (t - 1) / 2) with t - 1 exact (Sterbenz).
template <class V>
GS_INLINE V log1p_unit(V t) {
  using S = typename lanes::Traits<V>::Scalar;
  const V lo = vmath::log1p_reduced(t);
  const V hi = vmath::log_combine(lanes::splat<V>(S(1)), (t - S(1)) * S(0.5));
  return lanes::select(t <= S(0.5), lo, hi);
}

// logsumexp of a contiguous row whose max xmax is finite, summed as the samplers sum.
template <class T>
T row_logsumexp(T* x, int64_t len, T xmax) {
  T sum = exp_sum<false>(x, 0, std::min(len, kSegment), xmax, T(1));
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum = sum + exp_sum<false>(x, b, std::min(len, b + kSegment), xmax, T(1));
  return xmax + vmath::log(sum);
}

#ifdef GS_HAVE_VECTOR_EXT
// row_logsumexp of a group of short rows in columns (col[c * kW + i]: element c of row
// i; rows/short_rows.hpp), xmax their max: element c in partial sum c % 16, combined as
// tree_sum does, so each lane has its row's bits (the row path's padding adds exact
// zeros).
template <class T>
GS_INLINE Vec<T> columns_logsumexp(const T* col, int64_t len, Vec<T> xmax) {
  using V = Vec<T>;
  V part[kLanes] = {};
  for (int64_t c = 0; c < len; ++c) {
    V& p = part[c % kLanes];
    p = p + vmath::exp_scaled_nonpos<0>(lanes::load<V>(col + c * kW<T>) - xmax);
  }
  return xmax + vmath::log(tree_sum(part));
}
#endif

// The standard exponential E_c of element c of absolute row q (g_c = -log(E_c) is the
// noise noisy_logits adds to it): one Philox block, the same bits as the lanes compute.
template <class T>
T exponential_at(PhiloxKey key, uint64_t q, int64_t c) {
  constexpr int wpe = words_per_element<T>();
  const uint64_t w = static_cast<uint64_t>(c) * wpe;
  uint32_t words[4];
  philox::row_words(key, q, w - w % 4, 4, words);
  return bits_to_exponential<T>(element_bits(words, static_cast<int64_t>(w % 4) / wpe, T()));
}

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
