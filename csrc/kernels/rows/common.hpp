// Per-target row machinery, part 1: the constants of the fixed summation order, the
// loop over rows (threads, Ctrl-C polling), segments of long rows, row offsets, the
// canonical NaN and per-thread scratch.  See csrc/README.md for the layout.
//
// The order of every floating-point operation within a row is fixed (elementwise
// math, then sums in fixed lanes and fixed segments), so results do not depend on the
// thread count, on how rows are split into calls, or on which path of the schedule
// (rows/schedule.hpp) a row takes.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
#include <omp.h>
#endif

#include "float_env.hpp"
#include "gumbel_softmax/kernels.hpp"
#include "simd/gumbel.hpp"
#include "simd/lanes.hpp"
#include "simd/philox.hpp"
#include "simd/target.hpp"
#include "simd/vmath.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// Elements per chunk: 256 noise values plus their 256 (float32) or 512 (float64)
// random words are 2-3 KiB, well inside a 32 KiB L1 data cache next to the row data.
constexpr int64_t kChunk = 256;

// Sums use kLanes interleaved partial sums (element c goes to partial c % kLanes) and
// a pairwise combination kLanes -> kLanes/2 -> ... -> 1.  16 is the float32 lane count
// of AVX-512; every target uses this same order, so sums are bitwise identical.
constexpr int kLanes = 16;

// Calls with fewer elements run on the calling thread: an OpenMP fork/join costs about
// 1-2 us, and 2^14 elements take at least ~15 us even at the vectorised rate of about
// 1 ns per element per core, so below this size threads cost more than they bring.
constexpr int64_t kParallelMinElements = int64_t{1} << 14;

template <class T>
T tree_sum(T (&acc)[kLanes]) {
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] = acc[j] + acc[j + w];
  return acc[0];
}

// Threads for a call: 1 below the size where threads pay, else the configured count.
inline int threads_for(int64_t nrows, int64_t len) {
  const bool big = nrows >= 2 && nrows * std::max<int64_t>(len, 1) >= kParallelMinElements;
  return big ? static_cast<int>(std::min<int64_t>(max_threads(), nrows)) : 1;
}

// Rows are split into their segments over the threads (see kSegment) when there are
// fewer rows than threads and each row has at least two segments, and always when a
// row has at least kLongRow elements (milliseconds of work: a row is one step of the
// loop that polls for Ctrl-C, a segment is one step of the split loop).  The
// arithmetic is the same either way; only the schedule changes.
constexpr int64_t kLongRow = int64_t{1} << 22;

// Calls poll_interrupt() on the calling thread of a loop over rows about every 0.1-1 ms
// of work: every `stride` bodies, a stride that adapts to what a body costs.  The first
// clock read comes after kFirstCheck bodies, so that short calls never read the clock.
class InterruptPoller {
 public:
  // After each body: true once the call must stop.
  bool after_body() {
    if (--countdown_ > 0) return false;
    const auto now = Clock::now();
    if (started_) {
      const auto since = now - last_read_;
      if (since < std::chrono::microseconds(100)) {
        stride_ = std::min<int64_t>(stride_ * 2, int64_t{1} << 20);
      } else if (since > std::chrono::milliseconds(1) && stride_ > 1) {
        stride_ /= 2;
      }
    }
    started_ = true;
    last_read_ = now;
    countdown_ = stride_;
    return poll_interrupt(now);
  }
  // After a body long enough that a clock read costs nothing beside it: reads the clock
  // now (after_body would first count kFirstCheck bodies, seconds of work on long rows).
  bool after_long_body() {
    countdown_ = 1;
    return after_body();
  }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr int64_t kFirstCheck = 8;
  Clock::time_point last_read_{};
  bool started_ = false;
  int64_t stride_ = kFirstCheck;
  int64_t countdown_ = kFirstCheck;
};

// The stop state of the row loop a thread is in (for_rows), for ops whose rows hold many
// steps of work (gumbel_rao_backward's samples, relaxed_top_k's k softmaxes): between
// two steps, row_should_stop() polls as after a row (on the calling thread, which owns
// the poller) and reads the loop's stop flag (the other threads), so that one long row
// stops in time too.  Outside a row loop it is false.
struct RowStop {
  std::atomic<bool>* stop = nullptr;
  InterruptPoller* poller = nullptr;  // the calling thread's only
};
inline thread_local RowStop t_row_stop;

// Sets this thread's RowStop for the extent of a row loop (restoring the one before).
class RowStopScope {
 public:
  RowStopScope(std::atomic<bool>* stop, InterruptPoller* poller) : saved_(t_row_stop) {
    t_row_stop = RowStop{stop, poller};
  }
  ~RowStopScope() { t_row_stop = saved_; }
  RowStopScope(const RowStopScope&) = delete;
  RowStopScope& operator=(const RowStopScope&) = delete;

 private:
  RowStop saved_;
};

// Inside a row body, between two steps over `len` elements each: true once the call must
// stop (the row may then be left unfinished: an interrupted call's out is partly
// written, docs/reliability.md).  Steps of kLongStep elements or more read the clock at
// every step.
constexpr int64_t kLongStep = int64_t{1} << 14;
inline bool row_should_stop(int64_t len) {
  const RowStop& s = t_row_stop;
  if (s.poller && (len >= kLongStep ? s.poller->after_long_body() : s.poller->after_body())) {
    if (s.stop) s.stop->store(true, std::memory_order_relaxed);
    return true;
  }
  return s.stop && s.stop->load(std::memory_order_relaxed);
}

// Runs body(r, tid) for r in [0, nrows) on nthreads threads; tid < nthreads indexes
// per-thread scratch.  The threads take rows in chunks of about 1/32 of a thread's
// share from a shared counter, so that the calling thread (which polls for Ctrl-C) keeps
// working until every row has been handed out, whatever the other threads' speed, and
// a thread slowed by other work on the machine holds the call up by one chunk at most.
// Once an interrupt is pending, every thread stops taking rows.  (Results never depend
// on which thread computes a row.)
template <class Body>
void for_rows(int64_t nrows, int nthreads, Body&& body) {
  if (interrupted()) return;  // an earlier loop of this call was interrupted
#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
  if (nthreads > 1) {
    std::atomic<int64_t> next{0};
    std::atomic<bool> stop{false};
#pragma omp parallel num_threads(nthreads)
    {
      const IeeeScope ieee;  // a worker keeps the environment of the thread that made it
      const int tid = omp_get_thread_num(), team = omp_get_num_threads();
      if (tid == 0) note_team_size(team);
      const int64_t chunk = std::max<int64_t>(1, nrows / (int64_t{32} * team));
      InterruptPoller poller;  // used by the calling thread (tid 0) only
      const RowStopScope scope(&stop, tid == 0 ? &poller : nullptr);
      while (!stop.load(std::memory_order_relaxed)) {
        const int64_t lo = next.fetch_add(chunk, std::memory_order_relaxed);
        if (lo >= nrows) break;
        const int64_t hi = std::min(nrows, lo + chunk);
        for (int64_t r = lo; r < hi && !stop.load(std::memory_order_relaxed); ++r) {
          body(r, tid);
          if (tid == 0 && poller.after_body()) {
            stop.store(true, std::memory_order_relaxed);
            break;
          }
        }
      }
    }
    return;
  }
#endif
  (void)nthreads;
  note_team_size(1);
  InterruptPoller poller;
  std::atomic<bool> stop{false};
  const RowStopScope scope(&stop, &poller);
  for (int64_t r = 0; r < nrows && !stop.load(std::memory_order_relaxed); ++r) {
    body(r, 0);
    if (poller.after_body()) return;
  }
}

#ifdef GS_HAVE_VECTOR_EXT
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  using type = lanes::VF32;
};
template <>
struct VecOf<double> {
  using type = lanes::VF64;
};
template <class T>
using Vec = typename VecOf<T>::type;
// Lanes of the target's native vector of T; kLanes / W vectors cover one 16-element step.
template <class T>
constexpr int kW = lanes::width<Vec<T>>();
template <class T>
constexpr int kSub = kLanes / kW<T>;
static_assert(kLanes % lanes::width<lanes::VF32>() == 0, "16 summation lanes per step");

// Copies the kLanes partial sums held in kSub vectors into acc (lane j of vector k is
// partial sum k * W + j).
template <class T>
GS_INLINE void spill(const Vec<T> (&v)[kSub<T>], T (&acc)[kLanes]) {
  for (int k = 0; k < kSub<T>; ++k)
    for (int j = 0; j < kW<T>; ++j) acc[k * kW<T> + j] = v[k][j];
}

#endif

// ----- prefetching the rows a loop will need next -----------------------------------
// A hint to fetch the cache line of addr into every cache level (write: for a store).
#if defined(__GNUC__) || defined(__clang__)
#define GS_PREFETCH(addr, write) __builtin_prefetch((addr), (write), 3)
#else
#define GS_PREFETCH(addr, write) ((void)(addr))
#endif

// Rows up to this length are prefetched (two rows of operands fit in L2 beside the
// rows a loop works on; longer rows would evict their own data).
constexpr int64_t kPrefetchLen = int64_t{1} << 14;
// Light loops (a few instructions per vector) prefetch only on arrays of at least this
// size: about twice the L2 cache of the two cores measured (2 MiB each).
constexpr int64_t kPrefetchMinBytes = int64_t{8} << 20;

// What a row loop fetches alongside its own work (noisy_logits, unit_exp_sum: at(c) once
// per cache line of elements c ..): NoPrefetch nothing; RowPrefetch element c of one row to
// be read and one to be written, so that their memory traffic overlaps the loop's
// arithmetic instead of following it.  Only hints: no result depends on them.
struct NoPrefetch {
  GS_INLINE void at(int64_t) const {}
};
template <class T>
struct RowPrefetch {
  const T* read;
  const T* write;
  GS_INLINE void at(int64_t c) const {
    GS_PREFETCH(read + c, 0);
    GS_PREFETCH(write + c, 1);
  }
};

// The offset of row r of a RowSpec: base + row_offset(s, r) + c * s.step is element c.
GS_INLINE int64_t row_offset(const RowSpec& s, int64_t r) {
  // At most one batch dimension (a contiguous batch): r < nrows, its length.
  if (s.nbatch <= 1) return s.nbatch ? r * s.stride[0] : 0;
  int64_t off = 0;
  for (int d = s.nbatch - 1; d >= 0; --d) {
    const int64_t n = s.shape[d];
    off += (r % n) * s.stride[d];
    r /= n;
  }
  return off;
}

// What row r's loops prefetch (RowPrefetch) on the row-by-row path: row r + 1's x and
// out (to be written; null: none), so that the hardware prefetchers' restart at every
// row (a new 4 KiB page for rows of 1000 float32) costs no wait.  Where row r + 1 is
// missing, strided or longer than kPrefetchLen, row r's own x (cached already).
// Measured on the forward (bench/ab.py --against the build before, 2 threads):
// 1.04-1.06x at tau 0.5, 1.10-1.16x at tau 1 on (4096, 1000), (2048, 2000), (16384, 4096).
template <class T>
RowPrefetch<T> next_row_prefetch(const T* x, const RowSpec& xs, const T* out, const RowSpec* os,
                                 int64_t r, const T* xr) {
  if (r + 1 >= xs.nrows || xs.len > kPrefetchLen || xs.step != 1) return {xr, xr};
  const T* next_x = x + row_offset(xs, r + 1);
  if (!out || os->step != 1) return {next_x, next_x};
  return {next_x, out + row_offset(*os, r + 1)};
}

// The one NaN every kernel writes: the positive quiet NaN without payload (NumPy's
// np.nan: 0x7FC00000 / 0x7FF8000000000000).  NaN results of arithmetic carry the sign
// and payload of whichever NaN operand the instruction picked (or x86's negative
// "default NaN"), which differs between targets and compilers, so every output that can
// be NaN is either written as kNaN or passed through canonical() at the store.
// (quiet_NaN() is __builtin_nan("") in GCC and Clang: exactly those bits;
// tests/test_targets.py checks the bits of every NaN the functions return.)
template <class T>
constexpr T kNaN = std::numeric_limits<T>::quiet_NaN();

// x, or kNaN where x is NaN (a compare and a blend per vector).
template <class V>
GS_INLINE V canonical(V x) {
  using S = typename lanes::Traits<V>::Scalar;
  return lanes::select(x == x, x, lanes::splat<V>(kNaN<S>));
}

template <class T>
void fill_row(T* p, int64_t step, int64_t len, T value) {
  if (step == 1)
    std::fill(p, p + len, value);  // vectorised (a loop with a runtime step is scalar)
  else
    for (int64_t c = 0; c < len; ++c) p[c * step] = value;
}

template <class T>
void fill_nan(T* p, int64_t step, int64_t len) {
  fill_row(p, step, len, kNaN<T>);
}

// Rows are summed in segments of kSegment elements: the sum of a row is
// ((s_0 + s_1) + s_2) + ..., s_k the sum of segment k in 16 interleaved partial sums
// combined pairwise.  Fixed segments let a long row be split over threads without
// changing a bit; rows of up to kSegment elements are one segment.
constexpr int64_t kSegment = int64_t{1} << 15;

inline int64_t segments(int64_t len) {
  return std::max<int64_t>(1, (len + kSegment - 1) / kSegment);
}

// Runs body(k, begin, end) for the segments k = [begin, end) of a row of len elements,
// spread over the threads.
template <class Body>
void for_segments(int64_t len, Body&& body) {
  const int64_t nseg = segments(len);
  const int nthreads = static_cast<int>(std::min<int64_t>(max_threads(), nseg));
  for_rows(nseg, nthreads,
           [&](int64_t k, int) { body(k, k * kSegment, std::min(len, (k + 1) * kSegment)); });
}

inline bool split_rows(int64_t nrows, int64_t len) {
  if (len >= kLongRow) return true;
  return len >= 2 * kSegment && nrows < max_threads() && max_threads() > 1;
}

// Per-thread scratch of a call: n elements of T, zeroed, allocated up front (so that a
// failed allocation happens before anything is written).  (A class of this namespace
// rather than std::vector: see the per-target rule in csrc/README.md.)  A failed
// allocation throws std::bad_alloc (MemoryError in Python) from a nothrow allocation, so
// that under AddressSanitizer, whose throwing operator new aborts the process instead
// (scripts/sanitize.sh sets allocator_may_return_null=1), it still raises.  Trivial
// types come from calloc: a large block is fresh zero pages from the system, touched
// only when a row first writes them, where a value-initialising new would write the
// whole block before the first row (a pass nobody can interrupt: 157 MB, tens of ms,
// for relaxed_top_k_backward on a row of 2**17 with k = 300).
template <class T>
class Scratch {
  static constexpr bool kCalloc = std::is_trivial<T>::value;

 public:
  Scratch() = default;
  explicit Scratch(int64_t n) { resize(n); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { release(); }
  void resize(int64_t n) {
    release();
    if (n > 0) {
      const size_t count = static_cast<size_t>(n);
      if constexpr (kCalloc) {
        p_ = static_cast<T*>(std::calloc(count, sizeof(T)));
      } else {
        p_ = new (std::nothrow) T[count]();
      }
      if (!p_) throw std::bad_alloc();
    }
    n_ = n;
  }
  T* data() const { return p_; }
  T& operator[](int64_t i) const { return p_[i]; }
  bool empty() const { return n_ == 0; }

 private:
  void release() {
    if constexpr (kCalloc) {
      std::free(p_);
    } else {
      delete[] p_;
    }
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  int64_t n_ = 0;
};

// An op's entry points for the dispatcher: run(const Args<float>&) and
// run(const Args<double>&) of this target, forwarding to the op's kernel template
// (registered through the op's line in gumbel_softmax/ops.inc, see registry.cpp).
#define GS_KERNEL(Args, kernel)                        \
  void run(const Args<float>& a) { kernel<float>(a); } \
  void run(const Args<double>& a) { kernel<double>(a); }

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
