// Testing aids: op "eval" (a math primitive elementwise on the target's lanes) and
// op "set_short_rows" (the short-row path on or off).  Compiled once per SIMD target.
#include "rows/common.hpp"
#include "rows/short_rows.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// Elementwise evaluation of one math primitive on this target's lanes (tests bound their
// error and compare targets): 0 = log, 1 = exp, 2 = log1p_reduced, 3 = bits_to_gumbel
// (input: the bits, as float32 / float64 of the same width).
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
