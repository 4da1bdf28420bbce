// This target's kernel table, generated from ops.inc: each op's file defines run() for
// its Args in this namespace (GS_KERNEL), and fill_table takes their addresses.
// Compiled once per SIMD target.
#include "gumbel_softmax/kernels.hpp"
#include "simd/target.hpp"
#include "table.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {

#define GS_OP(name, Args)       \
  void run(const Args<float>&); \
  void run(const Args<double>&);
#define GS_OP_UNTYPED(name, Args) void run(const Args&);
#include "gumbel_softmax/ops.inc"
#undef GS_OP
#undef GS_OP_UNTYPED

void fill_table(KernelTable& t) {
#define GS_OP(name, Args) \
  t.f32.name = &run;      \
  t.f64.name = &run;
#define GS_OP_UNTYPED(name, Args) t.name = &run;
#include "gumbel_softmax/ops.inc"
#undef GS_OP
#undef GS_OP_UNTYPED
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax
