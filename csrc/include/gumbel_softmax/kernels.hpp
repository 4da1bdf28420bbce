// The kernels' interface, shared by every SIMD target, the dispatcher and the bindings.
// Pure C++: the bindings hand in raw pointers, sizes and element strides; nothing here
// touches Python objects, so every kernel may run with the GIL released.
//
// Target-independent: this header holds types and declarations only, no function
// bodies, so that a copy compiled with one target's flags can never be linked in for
// another's (see csrc/README.md, "The per-target rule").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace gumbel_softmax {

// The key of the Philox4x32-10 stream (the generator's 64-bit seed).
struct PhiloxKey {
  uint32_t k0, k1;
};

// The rows of one array: `nrows` rows of `len` elements, element c of row r at
// base + offset(r) + c * step (offsets and steps in elements, possibly negative).
// Rows are numbered in C order over the batch dimensions (all dimensions but the
// sampled axis), which are stored coalesced: adjacent dimensions that step evenly
// through memory are merged, so a contiguous batch costs one multiply per row.
struct RowSpec {
  static constexpr int kMaxDims = 64;
  int64_t nrows = 1;
  int64_t len = 0;
  int64_t step = 1;
  int nbatch = 0;
  // Entries 0 .. nbatch - 1 only (make_rowspec sets them): not zeroed, as every call
  // builds a RowSpec for each of its arrays.
  int64_t shape[kMaxDims];
  int64_t stride[kMaxDims];
  // (the offset of row r: row_offset in csrc/kernels/rows/common.hpp)
};

// Builds a RowSpec from a shape and element strides with `axis` as the row axis.
RowSpec make_rowspec(int ndim, const int64_t* shape, const int64_t* strides, int axis);

// The noise of the stream: standard Gumbel (what the samplers add) or standard logistic
// (what relaxed_bernoulli adds), from the same words.
enum class Noise { gumbel, logistic };

// The longest rows the forward kernel applies a mask to itself (longer ones: mask the
// logits first): rows are masked while gathered into tiles (see ops/softmax_forward.cpp).
int64_t masked_row_limit(int itemsize);

// ----- the ops -----------------------------------------------------------------
// Each op has one Args struct, defined in its op file csrc/kernels/ops/<op>.cpp (types
// only), and one line in ops.inc, which declares it here with its run() overloads:
// run(args) runs the op on the active SIMD target (typed ops: T = float or double).
#define GS_OP(name, Args)       \
  template <class T>            \
  struct Args;                  \
  void run(const Args<float>&); \
  void run(const Args<double>&);
#define GS_OP_UNTYPED(name, Args) \
  struct Args;                    \
  void run(const Args&);
#include "gumbel_softmax/ops.inc"
#undef GS_OP
#undef GS_OP_UNTYPED

// The active target's name ("baseline", "avx2", "avx512"), chosen once from CPUID and
// GUMBEL_SOFTMAX_TARGET; the targets compiled into this build that this CPU supports;
// a warning to show when GUMBEL_SOFTMAX_TARGET asked for something unavailable.
const char* cpu_target();
std::vector<std::string> cpu_targets();
const std::string& target_warning();
// Threads (OpenMP when built with it, else always 1).  set_max_threads(n > 0) fixes the
// count for the whole process; set_max_threads(0) follows OpenMP's setting again.  The
// count in effect is at most thread_limit(), and 1 in a child process made by fork()
// (GNU OpenMP's thread pool does not survive fork: a parallel region there waits
// forever for the parent's workers), see after_fork_child.
int max_threads();
void set_max_threads(int n);
int thread_limit();
bool have_openmp();
// Registers the fork handler (pthread_atfork; nothing on Windows).  Called once, when
// the extension module loads.
void install_fork_handler();
bool in_fork_child();

// Interruption of long calls (Ctrl-C).  A call's loops over rows call poll_interrupt()
// on the calling thread about every millisecond of work; at most every 50 ms it asks the
// hook set by the bindings, which returns true when the call must stop (a signal
// handler raised, e.g. KeyboardInterrupt).  Then the rows not yet started are skipped,
// and interrupted() stays true on that thread until the next begin_call().
using InterruptHook = bool (*)();
void set_interrupt_hook(InterruptHook hook);
void begin_call();
// begin_call for a call that must not ask the hook (XLA FFI handlers: any thread, with or
// without the GIL): it runs to the end.
void begin_call_unpolled();
bool poll_interrupt(std::chrono::steady_clock::time_point now);
bool interrupted();
// The number of threads that ran the last parallel-or-serial loop over rows (for tests
// of the thread controls: what a call really used, not what was asked for).
void note_team_size(int n);
int last_team_size();

}  // namespace gumbel_softmax
