// The kernel table: one function pointer per op and dtype, generated from ops.inc.  Each
// compiled SIMD target fills one (its fill_table, registry.cpp); dispatch.cpp picks
// the table of the active target once.  Target-independent: types and declarations only.
#pragma once

#include "gumbel_softmax/kernels.hpp"

namespace gumbel_softmax {

template <class T>
struct TypedKernels {
#define GS_OP(name, Args) void (*name)(const Args<T>&) = nullptr;
#define GS_OP_UNTYPED(name, Args)
#include "gumbel_softmax/ops.inc"
#undef GS_OP
#undef GS_OP_UNTYPED
};

struct KernelTable {
  TypedKernels<float> f32;
  TypedKernels<double> f64;
#define GS_OP(name, Args)
#define GS_OP_UNTYPED(name, Args) void (*name)(const Args&) = nullptr;
#include "gumbel_softmax/ops.inc"
#undef GS_OP
#undef GS_OP_UNTYPED
};

// Each target's table filler (a new target adds its line here and in dispatch.cpp).
namespace baseline {
void fill_table(KernelTable&);
}
namespace avx2 {
void fill_table(KernelTable&);
}
namespace avx512 {
void fill_table(KernelTable&);
}

}  // namespace gumbel_softmax
