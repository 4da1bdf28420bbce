// The kernels' interface, shared by every SIMD target, the dispatcher and the bindings.
// Pure C++: the bindings hand in raw pointers, sizes and element strides; nothing here
// touches Python objects, so every kernel may run with the GIL released.
//
// Target-independent: this header holds types and declarations only, no function
// bodies, so that a copy compiled with one target's flags can never be linked in for
// another's (see csrc/README.md, "The per-target rule").  Each op has one Args struct
// here and one line in ops.inc; gumbel_softmax::run(args) runs it on the active target.
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
  int64_t shape[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  // (the offset of row r: row_offset in csrc/kernels/rows/common.hpp)
};

// Builds a RowSpec from a shape and element strides with `axis` as the row axis.
RowSpec make_rowspec(int ndim, const int64_t* shape, const int64_t* strides, int axis);

// The noise of the stream: standard Gumbel (what the samplers add) or standard logistic
// (what relaxed_bernoulli adds), from the same words.
enum class Noise { gumbel, logistic };

// ----- the ops: one Args struct each (T: float or double) -------------------------
// Temperatures arrive as inv_tau = 1/tau rounded to T (see inverse_tau in
// csrc/bindings/common.hpp).  Rows consume stream rows first_row, first_row + 1, ...

// Noise: the noise of rows first_row, ... of the stream into out.
template <class T>
struct NoiseArgs {
  T* out = nullptr;
  RowSpec os;
  Noise kind = Noise::gumbel;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// One forward call over the rows of x.  y = softmax((x + g) / tau), its log (log), its
// one-hot (hard; with a non-null y_soft the relaxed sample goes there too), or only the
// index of the one-hot (index non-null, y null: categorical).  All specs have the same
// nrows and len.
template <class T>
struct ForwardArgs {
  const T* x = nullptr;
  RowSpec xs;
  T* y = nullptr;
  RowSpec ys;
  T* y_soft = nullptr;
  RowSpec ss;
  int64_t* index = nullptr;       // per row, contiguous: the argmax of x + g, or -1
  const uint8_t* mask = nullptr;  // or: 0 makes that x -inf (rows of at most
  RowSpec ms;                     //   masked_row_limit elements)
  T inv_tau = 1;                  // for every row, unless
  const T* inv_taus = nullptr;    // one per row, contiguous
  bool hard = false;
  bool log = false;
  PhiloxKey key{};
  uint64_t first_row = 0;
};
// The longest rows the forward kernel applies a mask to itself (longer ones: mask the
// logits first): rows are masked while gathered into tiles (see ops/softmax_forward.cpp).
int64_t masked_row_limit(int itemsize);

// out = y_soft * (grad_y - sum(grad_y * y_soft)) / tau, row by row (inv_taus: one per
// row, contiguous, or null for inv_tau everywhere).  out may be grad_y or y_soft.
template <class T>
struct BackwardArgs {
  const T* grad_y = nullptr;
  RowSpec gs;
  const T* y_soft = nullptr;
  RowSpec ss;
  T* out = nullptr;
  RowSpec os;
  T inv_tau = 1;
  const T* inv_taus = nullptr;
};

// The indices of the k largest x + g of each row in decreasing order (ties: lower index
// first) into out (nrows x k, contiguous); -1 for slots past the row's finite values and
// for rows with no defined sample.
template <class T>
struct TopKArgs {
  const T* x = nullptr;
  RowSpec xs;
  int64_t* out = nullptr;
  int64_t k = 0;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// Relaxed Bernoulli, elementwise over rows of the last axis: v = x + L (logistic noise),
// y_soft = sigmoid(v / tau), y = [v > 0] (hard) or y_soft.  inv_tau: per element, with
// its own (broadcasting) spec.
template <class T>
struct BernoulliArgs {
  const T* x = nullptr;
  RowSpec xs;
  T* y = nullptr;
  RowSpec ys;
  T* y_soft = nullptr;  // hard only, or null
  RowSpec ss;
  const T* inv_tau = nullptr;
  RowSpec ts;
  bool hard = false;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

// out = grad_y * y_soft * (1 - y_soft) / tau, elementwise (inv_tau per element).
template <class T>
struct BernoulliBackwardArgs {
  const T* grad_y = nullptr;
  RowSpec gs;
  const T* y_soft = nullptr;
  RowSpec ss;
  T* out = nullptr;
  RowSpec os;
  const T* inv_tau = nullptr;
  RowSpec ts;
};

// The Concrete log-density of each row (see README): with l = log y (or y itself when
// log_space) and s = x - tau l,  out[r] = cst + sum(s) - K logsumexp(s)
// - (log_space ? 0 : sum(l)), cst = lgamma(K) + (K-1) log tau (computed by the caller
// in float64).  tau and cst: one per row (tau_step 1) or one for all (tau_step 0);
// out: one per row, contiguous.  (Rows with large s are computed again with s shifted
// by a constant, which leaves the value unchanged; see concrete_shifted.)
template <class T>
struct ConcreteArgs {
  const T* y = nullptr;
  RowSpec ys;
  const T* x = nullptr;
  RowSpec xs;
  const T* tau = nullptr;
  const T* cst = nullptr;
  int64_t tau_step = 0;
  bool log_space = false;
  T* out = nullptr;
};

// Testing aid: a math primitive elementwise on the target's lanes (see ops/testing.cpp):
// which = 0 log, 1 exp, 2 log1p_reduced, 3 bits_to_gumbel (of the input's bits).
template <class T>
struct EvalArgs {
  int which = 0;
  const T* in = nullptr;
  T* out = nullptr;
  int64_t n = 0;
};

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

// out[i] = philox4x32_10(counters[i], key) for n blocks of 4 words.
struct PhiloxBlocksArgs {
  const uint32_t* counters = nullptr;
  int64_t n = 0;
  PhiloxKey key{};
  uint32_t* out = nullptr;
};

// Testing aid: turns the across-rows path for short rows on or off (default on).
struct ShortRowsArgs {
  bool on = true;
};

// run(args): the op of that Args type on the active SIMD target.  One overload per
// line of ops.inc (typed ops: float and double).
#define GS_OP(name, Args)       \
  void run(const Args<float>&); \
  void run(const Args<double>&);
#define GS_OP_UNTYPED(name, Args) void run(const Args&);
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
bool poll_interrupt(std::chrono::steady_clock::time_point now);
bool interrupted();
// The number of threads that ran the last parallel-or-serial loop over rows (for tests
// of the thread controls: what a call really used, not what was asked for).
void note_team_size(int n);
int last_team_size();

}  // namespace gumbel_softmax
