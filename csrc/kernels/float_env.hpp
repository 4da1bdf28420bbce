// The floating-point environment the kernels' bits are defined in: IEEE round to
// nearest, with subnormal inputs and results kept.  A thread may come with another one
// -- flush-to-zero and denormals-are-zero set by torch.set_flush_denormal(True), by a
// library built with -ffast-math (its start-up code sets them for the process), or by
// XLA on its own threads -- and OpenMP's worker threads keep the environment of the
// thread that created them, so a row's bits would depend on the thread it ran on.
// IeeeScope sets the environment for its lifetime and puts the thread's own back after;
// it touches nothing when the thread already has it.  Used at every kernel entry
// (dispatch.cpp) and in every thread of a parallel loop (rows/common.hpp).
#pragma once

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <xmmintrin.h>
#define GS_HAVE_MXCSR 1
#endif

namespace gumbel_softmax {

class IeeeScope {
 public:
#ifdef GS_HAVE_MXCSR
  IeeeScope() : saved_(_mm_getcsr()) {
    // MXCSR: flush-to-zero (bit 15), denormals-are-zero (bit 6), rounding (bits 13-14)
    constexpr unsigned kNonIeee = 0x8000u | 0x0040u | 0x6000u;
    changed_ = (saved_ & kNonIeee) != 0;
    if (changed_) _mm_setcsr(saved_ & ~kNonIeee);
  }
  ~IeeeScope() {
    if (changed_) _mm_setcsr(saved_);
  }
#else
  IeeeScope() = default;  // other architectures: the environment is left as it is
#endif
  IeeeScope(const IeeeScope&) = delete;
  IeeeScope& operator=(const IeeeScope&) = delete;

 private:
#ifdef GS_HAVE_MXCSR
  unsigned saved_;
  bool changed_;
#endif
};

}  // namespace gumbel_softmax
