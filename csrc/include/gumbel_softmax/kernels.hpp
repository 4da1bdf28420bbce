// Entry points of the fused kernels.  Pure C++: the bindings hand in raw pointers,
// sizes and element strides; nothing here touches Python objects, so every function
// may run with the GIL released.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gumbel_softmax/philox.hpp"

namespace gumbel_softmax {

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

  int64_t offset(int64_t r) const {
    int64_t off = 0;
    for (int d = nbatch - 1; d >= 0; --d) {
      const int64_t n = shape[d];
      off += (r % n) * stride[d];
      r /= n;
    }
    return off;
  }
};

// Builds a RowSpec from a shape and element strides with `axis` as the row axis.
RowSpec make_rowspec(int ndim, const int64_t* shape, const int64_t* strides, int axis);

// The noise of the stream: standard Gumbel (what the samplers add) or standard logistic
// (what relaxed_bernoulli adds), from the same words.
enum class Noise { gumbel, logistic };

// Noise, rows first_row, first_row + 1, ... of the stream.
template <class T>
void noise_rows(T* out, const RowSpec& o, Noise kind, PhiloxKey key, uint64_t first_row);

// Temperatures arrive as inv_tau = 1/tau rounded to T (see inverse_tau).
//
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
template <class T>
void forward_rows(const ForwardArgs<T>& a);
// The longest rows forward_rows applies a mask to itself (longer ones: mask the logits
// first): rows are masked while gathered into tiles (see kernels.cpp).
int64_t masked_row_limit(int itemsize);

// grad = y_soft * (grad_y - sum(grad_y * y_soft)) / tau, row by row (inv_taus: one per
// row, contiguous, or null for inv_tau everywhere).
template <class T>
void backward_rows(const T* grad_y, const RowSpec& gs, const T* y_soft, const RowSpec& ss, T* out,
                   const RowSpec& os, T inv_tau, const T* inv_taus);

// The indices of the k largest x + g of each row in decreasing order (ties: lower index
// first) into out (nrows x k, contiguous); -1 for slots past the row's finite values and
// for rows with no defined sample.
template <class T>
void top_k_rows(const T* x, const RowSpec& xs, int64_t* out, int64_t k, PhiloxKey key,
                uint64_t first_row);

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
template <class T>
void bernoulli_rows(const BernoulliArgs<T>& a);

// grad = grad_y * y_soft * (1 - y_soft) / tau, elementwise (inv_tau per element).
template <class T>
void bernoulli_backward_rows(const T* grad_y, const RowSpec& gs, const T* y_soft, const RowSpec& ss,
                             T* out, const RowSpec& os, const T* inv_tau, const RowSpec& ts);

// The Concrete log-density of each row (see README): with l = log y (or y itself when
// log_space) and s = x - tau l,  out[r] = cst + sum(s) - K logsumexp(s)
// - (log_space ? 0 : sum(l)), cst = lgamma(K) + (K-1) log tau (computed by the caller
// in float64).  tau and cst: one per row (tau_step 1) or one for all (tau_step 0);
// out: one per row, contiguous.  (Rows with large s are computed again with s shifted
// by a constant, which leaves the value unchanged; see concrete_shifted.)
template <class T>
void concrete_rows(const T* y, const RowSpec& ys, const T* x, const RowSpec& xs, const T* tau,
                   const T* cst, int64_t tau_step, bool log_space, T* out);

// float16 / bfloat16 (bits) <-> float32 for n contiguous elements (see half.hpp).
void half_to_float(const uint16_t* src, float* dst, int64_t n, bool bf16);
void float_to_half(const float* src, uint16_t* dst, int64_t n, bool bf16);

// 1/tau for a positive finite tau, rounded to T and capped at T's largest finite value
// (a tau below 1/max would otherwise give inf, and 0 * inf = NaN at the row's maximum;
// the cap keeps the tau -> 0 limit, the one-hot).  A tau above about 2 / (T's smallest
// subnormal), 1.4e45 for float, gives 0: the kernels treat 1/tau == 0 as the
// tau -> infinity limit (uniform over the finite entries, see flatten_row in kernels.cpp).
template <class T>
T inverse_tau(double tau) {
  const double inv = 1.0 / tau;
  const double top = static_cast<double>(std::numeric_limits<T>::max());
  return static_cast<T>(inv < top ? inv : top);
}

// The SIMD targets: kernels.cpp is compiled once per target, each copy fills one table.
struct KernelTable {
  void (*noise_f32)(float*, const RowSpec&, Noise, PhiloxKey, uint64_t) = nullptr;
  void (*noise_f64)(double*, const RowSpec&, Noise, PhiloxKey, uint64_t) = nullptr;
  void (*forward_f32)(const ForwardArgs<float>&) = nullptr;
  void (*forward_f64)(const ForwardArgs<double>&) = nullptr;
  void (*backward_f32)(const float*, const RowSpec&, const float*, const RowSpec&, float*,
                       const RowSpec&, float, const float*) = nullptr;
  void (*backward_f64)(const double*, const RowSpec&, const double*, const RowSpec&, double*,
                       const RowSpec&, double, const double*) = nullptr;
  void (*top_k_f32)(const float*, const RowSpec&, int64_t*, int64_t, PhiloxKey, uint64_t) = nullptr;
  void (*top_k_f64)(const double*, const RowSpec&, int64_t*, int64_t, PhiloxKey,
                    uint64_t) = nullptr;
  void (*bernoulli_f32)(const BernoulliArgs<float>&) = nullptr;
  void (*bernoulli_f64)(const BernoulliArgs<double>&) = nullptr;
  void (*bernoulli_backward_f32)(const float*, const RowSpec&, const float*, const RowSpec&, float*,
                                 const RowSpec&, const float*, const RowSpec&) = nullptr;
  void (*bernoulli_backward_f64)(const double*, const RowSpec&, const double*, const RowSpec&,
                                 double*, const RowSpec&, const double*, const RowSpec&) = nullptr;
  void (*concrete_f32)(const float*, const RowSpec&, const float*, const RowSpec&, const float*,
                       const float*, int64_t, bool, float*) = nullptr;
  void (*concrete_f64)(const double*, const RowSpec&, const double*, const RowSpec&, const double*,
                       const double*, int64_t, bool, double*) = nullptr;
  void (*half_to_float)(const uint16_t*, float*, int64_t, bool) = nullptr;
  void (*float_to_half)(const float*, uint16_t*, int64_t, bool) = nullptr;
  // Testing aid: turns the across-rows path for short rows on or off (default on).
  void (*set_short_rows)(bool) = nullptr;
  // Testing aid: a math primitive elementwise on the target's lanes (see kernels.cpp).
  void (*eval_f32)(int, const float*, float*, int64_t) = nullptr;
  void (*eval_f64)(int, const double*, double*, int64_t) = nullptr;
};
namespace baseline {
void fill_table(KernelTable&);
}
namespace avx2 {
void fill_table(KernelTable&);
}
namespace avx512 {
void fill_table(KernelTable&);
}

// The active target's name ("baseline", "avx2", "avx512"), chosen once from CPUID and
// GUMBEL_SOFTMAX_TARGET; the targets compiled into this build that this CPU supports;
// a warning to show when GUMBEL_SOFTMAX_TARGET asked for something unavailable.
const char* cpu_target();
std::vector<std::string> cpu_targets();
const std::string& target_warning();
void set_short_rows(bool on);  // testing aid, see KernelTable
void eval_primitive(int which, const float* in, float* out, int64_t n);    // testing aid
void eval_primitive(int which, const double* in, double* out, int64_t n);  // testing aid

// out[i] = philox4x32_10(counters[i], key) for n blocks of 4 words.
void philox_blocks(const uint32_t* counters, int64_t n, PhiloxKey key, uint32_t* out);

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
