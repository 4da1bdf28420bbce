// The fused row kernels.  A row is processed in chunks of kChunk elements whose random
// words and noise stay in L1.  The order of every floating-point operation within a row
// is fixed (elementwise math, then sums in fixed lanes and fixed segments), so results do
// not depend on the thread count, on how rows are split into calls, or on which of the
// paths below a row takes:
//   - short rows (<= 32 elements): several rows at once, one per vector lane;
//   - few long rows: each row's segments spread over the threads;
//   - strided rows: gathered into tiles of 16 contiguous rows;
//   - otherwise: one row per thread, rows spread over the threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
#include <omp.h>
#endif

#include "gumbel_softmax/gumbel.hpp"
#include "gumbel_softmax/half.hpp"
#include "gumbel_softmax/kernels.hpp"
#include "gumbel_softmax/lanes.hpp"
#include "gumbel_softmax/philox.hpp"
#include "gumbel_softmax/vmath.hpp"

#ifndef GS_TARGET
#define GS_TARGET baseline
#endif

namespace gumbel_softmax {
// This file is compiled once per SIMD target (see CMakeLists.txt), each copy in its own
// namespace so that the copies do not collide (one definition rule).
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
int threads_for(int64_t nrows, int64_t len) {
  const bool big = nrows >= 2 && nrows * std::max<int64_t>(len, 1) >= kParallelMinElements;
  return big ? static_cast<int>(std::min<int64_t>(max_threads(), nrows)) : 1;
}

// Rows are split into their segments over the threads (see kSegment) when there are
// fewer rows than threads and each row has at least two segments, and always when a
// row has at least kLongRow elements (milliseconds of work: a row is one step of the
// loop that polls for Ctrl-C, a segment is one step of the split loop).  The
// arithmetic is the same either way; only the schedule changes.
constexpr int64_t kLongRow = int64_t{1} << 22;
bool split_rows(int64_t nrows, int64_t len);

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

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr int64_t kFirstCheck = 8;
  Clock::time_point last_read_{};
  bool started_ = false;
  int64_t stride_ = kFirstCheck;
  int64_t countdown_ = kFirstCheck;
};

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
      const int tid = omp_get_thread_num(), team = omp_get_num_threads();
      if (tid == 0) note_team_size(team);
      const int64_t chunk = std::max<int64_t>(1, nrows / (int64_t{32} * team));
      InterruptPoller poller;  // used by the calling thread (tid 0) only
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
  for (int64_t r = 0; r < nrows; ++r) {
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

// Random words of the chunk: at least n * words_per_element words, in whole 16-block
// steps (64 words) when vectorised; `words` has room for kChunk elements' worth.
template <class T>
GS_INLINE void chunk_words(PhiloxKey key, uint64_t q, int64_t c0, int64_t n, uint32_t* words) {
  constexpr int wpe = words_per_element<T>();
  const uint64_t first = static_cast<uint64_t>(c0) * wpe;
#ifdef GS_HAVE_VECTOR_EXT
  constexpr int per_step = 4 * philox::kBlockLanes;
  philox::row_words_lanes(key, q, first, (n * wpe + per_step - 1) / per_step, words);
#else
  philox::row_words(key, q, first, n * wpe, words);
#endif
}

// The noise of one element's bits (lanes V or a scalar) of the given kind.
template <class V, class B>
GS_INLINE V noise_of(B bits, Noise kind) {
  return kind == Noise::logistic ? bits_to_logistic<V>(bits) : bits_to_gumbel<V>(bits);
}

// One chunk of noise: g[i] for elements c0 .. c0 + n - 1 of absolute row q (vectorised:
// g is filled up to n rounded up to the vector width; the extra lanes are noise of
// later elements).
template <class T>
GS_INLINE void noise_chunk(PhiloxKey key, uint64_t q, int64_t c0, int64_t n, uint32_t* words, T* g,
                           Noise kind = Noise::gumbel) {
  chunk_words<T>(key, q, c0, n, words);
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  using U = lanes::UInt<V>;
  if (kind == Noise::logistic) {
    for (int64_t i = 0; i < n; i += kW<T>)
      lanes::store(g + i,
                   bits_to_logistic<V>(lanes::load_bits<U>(words + i * words_per_element<T>())));
    return;
  }
  for (int64_t i = 0; i < n; i += kW<T>) {
    const U b = lanes::load_bits<U>(words + i * words_per_element<T>());
    lanes::store(g + i, bits_to_gumbel<V>(b));
  }
#else
  for (int64_t i = 0; i < n; ++i) g[i] = noise_of<T>(element_bits(words, i, T()), kind);
#endif
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
void fill_nan(T* p, int64_t step, int64_t len) {
  for (int64_t c = 0; c < len; ++c) p[c * step] = kNaN<T>;
}

// tau -> infinity.  When 1/tau rounds to 0, (v - max) * (1/tau) is NaN at v = -inf
// (-inf * 0), and the row would be NaN.  The limit is the uniform distribution over the
// finite entries: a defined row (max finite, no NaN, no +inf) calls this on its v
// before pass 2 and then uses 1/tau = 1, so (v - max) * 1 is exactly 0 (e = 1, log
// y = -log S) at every finite entry and -inf (e = 0, log y = -inf) at every -inf entry:
// the bits that 1/tau tiny but nonzero gives where (v - max) / tau rounds to a zero or
// subnormal, with S the count of finite entries summed in the usual order.  Only rows
// with 1/tau == 0 pay for this pass.
template <class T>
void flatten_row(T* v, int64_t begin, int64_t end, T max) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t c = begin; c < end; ++c) v[c] = v[c] == ninf ? ninf : max;
}

// What pass 1 learns about v = x + g: its maximum, the first index holding it, and
// whether any element is NaN.
template <class T>
struct RowStats {
  T max = -std::numeric_limits<T>::infinity();
  int64_t argmax = 0;
  bool nan = false;
  // A row with a NaN, all -inf or a +inf has no defined sample: it becomes NaN.
  bool defined() const { return !nan && std::isfinite(max); }
};

// The stats of a row from those of its consecutive segments.
template <class T>
RowStats<T> combine(const RowStats<T>* seg, int64_t nseg) {
  RowStats<T> st;
  for (int64_t k = 0; k < nseg; ++k) {
    st.nan = st.nan || seg[k].nan;
    if (seg[k].max > st.max) {  // strict: the earliest segment holding the max wins
      st.max = seg[k].max;
      st.argmax = seg[k].argmax;
    }
  }
  return st;
}

// Chunk buffers of one row pass, aligned for vector loads; padded by one vector.
template <class T>
struct ChunkBuffers {
  alignas(64) uint32_t words[kChunk * words_per_element<T>()];
  alignas(64) T g[kChunk];
  alignas(64) T x[kChunk + kLanes];
  alignas(64) T v[kChunk + kLanes];
};

// The n elements of a row from c0 on, contiguous: read in place when the row is
// contiguous and n is a whole number of 16-element steps, else gathered into buf
// (kChunk + kLanes elements) and padded with -inf to the next whole step.
template <class T>
const T* chunk_x(const T* x, int64_t step, int64_t c0, int64_t n, T* buf) {
  const T* xc = x + c0 * step;
  if (step == 1 && n % kLanes == 0) return xc;
  for (int64_t i = 0; i < n; ++i) buf[i] = xc[i * step];
  for (int64_t i = n; i < n + kLanes; ++i) buf[i] = -std::numeric_limits<T>::infinity();
  return buf;
}

// Pass 1 over elements [begin, end) of a row (begin a multiple of kChunk): v = x + g,
// with its max, first argmax and NaN flag.  x and v_out point at the row's element 0;
// v is written to v_out (contiguous) when it is non-null.
template <class T>
RowStats<T> noisy_logits(const T* x, int64_t step, int64_t begin, int64_t end, PhiloxKey key,
                         uint64_t q, T* v_out) {
  const int64_t len = end;
  ChunkBuffers<T> buf;
  RowStats<T> st;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  using I = lanes::Int<V>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  constexpr int W = kW<T>;
  V vmax = lanes::splat<V>(ninf);
  I vidx{};  // per lane: the first element index holding the lane's max
  I vnan{};
  I iota;
  for (int j = 0; j < W; ++j) iota[j] = j;
  for (int64_t c0 = begin; c0 < len; c0 += kChunk) {
    const int64_t n = std::min(kChunk, len - c0);
    noise_chunk(key, q, c0, n, buf.words, buf.g);
    const T* xc = chunk_x(x, step, c0, n, buf.x);
    for (int64_t i = 0; i < n; i += W) {
      // padded lanes are -inf + g = -inf: they change neither max, argmax nor NaN flag
      const V v = lanes::load<V>(xc + i) + lanes::load<V>(buf.g + i);
      lanes::store(buf.v + i, v);
      const I greater = v > vmax;
      vmax = lanes::select(greater, v, vmax);
      vidx = greater ? (iota + static_cast<int>(c0 + i)) : vidx;
      vnan |= (v != v);
    }
    if (v_out) std::memcpy(v_out + c0, buf.v, static_cast<size_t>(n) * sizeof(T));
  }
  // Combine the lanes: the max, then the lowest element index among lanes holding it.
  for (int j = 0; j < W; ++j)
    if (vmax[j] > st.max) st.max = vmax[j];
  st.argmax = len;
  for (int j = 0; j < W; ++j)
    if (vmax[j] == st.max) st.argmax = std::min<int64_t>(st.argmax, vidx[j]);
  if (st.argmax == len) st.argmax = begin;  // all -inf: undefined row, any index
  st.nan = lanes::any(vnan);
#else
  st.argmax = begin;
  for (int64_t c0 = begin; c0 < len; c0 += kChunk) {
    const int64_t n = std::min(kChunk, len - c0);
    noise_chunk(key, q, c0, n, buf.words, buf.g);
    T* v = v_out ? v_out + c0 : buf.v;
    for (int64_t i = 0; i < n; ++i) v[i] = x[(c0 + i) * step] + buf.g[i];
    for (int64_t i = 0; i < n; ++i) {
      st.nan = st.nan || (v[i] != v[i]);
      if (v[i] > st.max) {  // strict: ties keep the lowest index
        st.max = v[i];
        st.argmax = c0 + i;
      }
    }
  }
#endif
  return st;
}

// Rows are summed in segments of kSegment elements: the sum of a row is
// ((s_0 + s_1) + s_2) + ..., s_k the sum of segment k in 16 interleaved partial sums
// combined pairwise.  Fixed segments let a long row be split over threads without
// changing a bit; rows of up to kSegment elements are one segment.
constexpr int64_t kSegment = int64_t{1} << 15;

int64_t segments(int64_t len) { return std::max<int64_t>(1, (len + kSegment - 1) / kSegment); }

// Runs body(k, begin, end) for the segments k = [begin, end) of a row of len elements,
// spread over the threads.
template <class Body>
void for_segments(int64_t len, Body&& body) {
  const int64_t nseg = segments(len);
  const int nthreads = static_cast<int>(std::min<int64_t>(max_threads(), nseg));
  for_rows(nseg, nthreads,
           [&](int64_t k, int) { body(k, k * kSegment, std::min(len, (k + 1) * kSegment)); });
}

bool split_rows(int64_t nrows, int64_t len) {
  if (len >= kLongRow) return true;
  return len >= 2 * kSegment && nrows < max_threads() && max_threads() > 1;
}

// Pass 2 on v[begin, end) in place (contiguous): e = exp((v - max) / tau) (stored when
// kStore); returns the segment's sum, element c in partial sum (c - begin) % 16.
template <bool kStore = true, class T>
T exp_sum(T* v, int64_t begin, int64_t end, T max, T inv_tau) {
  int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  V vacc[kSub<T>] = {};
  for (; c + kLanes <= end; c += kLanes)
    for (int k = 0; k < kSub<T>; ++k) {
      T* p = v + c + k * kW<T>;
      const V e = vmath::exp((lanes::load<V>(p) - max) * inv_tau);
      if (kStore) lanes::store(p, e);
      vacc[k] = vacc[k] + e;
    }
  if (c < end) {
    // The last, partial step of 16, on a copy padded with -inf: exp(-inf) = +0 adds
    // nothing to a partial sum (which is +0 or positive), so the sums are those of the
    // scalar loop below, element for element.
    alignas(64) T tail[kLanes];
    const int64_t rem = end - c;
    for (int64_t j = 0; j < kLanes; ++j)
      tail[j] = j < rem ? v[c + j] : -std::numeric_limits<T>::infinity();
    for (int k = 0; k < kSub<T>; ++k) {
      T* p = tail + k * kW<T>;
      const V e = vmath::exp((lanes::load<V>(p) - max) * inv_tau);
      if (kStore) lanes::store(p, e);
      vacc[k] = vacc[k] + e;
    }
    if (kStore) std::memcpy(v + c, tail, static_cast<size_t>(rem) * sizeof(T));
    c = end;
  }
  T acc[kLanes];
  spill<T>(vacc, acc);
#else
  T acc[kLanes] = {};
  for (; c + kLanes <= end; c += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T e = vmath::exp((v[c + j] - max) * inv_tau);
      if (kStore) v[c + j] = e;
      acc[j] = acc[j] + e;
    }
#endif
  for (int j = 0; c + j < end; ++j) {
    const T e = vmath::exp((v[c + j] - max) * inv_tau);
    if (kStore) v[c + j] = e;
    acc[j] = acc[j] + e;
  }
  return tree_sum(acc);
}

// Pass 3 on [begin, end): y = e * s, or y = e / s when kDivide (y may be v itself, step 1).
template <bool kDivide = false, class T>
void scale(const T* v, int64_t begin, int64_t end, T s, T* y, int64_t ystep) {
  int64_t i = begin;
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1)
    for (; i + kW<T> <= end; i += kW<T>) {
      const auto e = lanes::load<Vec<T>>(v + i);
      lanes::store(y + i, kDivide ? e / s : e * s);
    }
#endif
  for (; i < end; ++i) y[i * ystep] = kDivide ? v[i] / s : v[i] * s;
}

// Pass 3 of the log-space sample on [begin, end): y = (v - max) / tau - lse, the same
// (v - max) / tau as exp_sum's.
template <class T>
void log_scale(const T* v, int64_t begin, int64_t end, T max, T inv_tau, T lse, T* y,
               int64_t ystep) {
  int64_t i = begin;
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1)
    for (; i + kW<T> <= end; i += kW<T>)
      lanes::store(y + i, (lanes::load<Vec<T>>(v + i) - max) * inv_tau - lse);
#endif
  for (; i < end; ++i) y[i * ystep] = (v[i] - max) * inv_tau - lse;
}

// Passes 2 and 3 of the soft sample (or its log) of one row, in place on v
// (contiguous), written to y (y may be v itself, step 1).
template <class T>
void softmax_from_noisy(T* v, int64_t len, T max, T inv_tau, bool log, T* y, int64_t ystep) {
  if (inv_tau == T(0)) {  // tau -> infinity: see flatten_row
    flatten_row(v, 0, len, max);
    inv_tau = T(1);
  }
  if (log) {
    T sum = exp_sum<false>(v, 0, std::min(len, kSegment), max, inv_tau);
    for (int64_t b = kSegment; b < len; b += kSegment)
      sum = sum + exp_sum<false>(v, b, std::min(len, b + kSegment), max, inv_tau);
    return log_scale(v, 0, len, max, inv_tau, vmath::log(sum), y, ystep);
  }
  T sum = exp_sum(v, 0, std::min(len, kSegment), max, inv_tau);
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum = sum + exp_sum(v, b, std::min(len, b + kSegment), max, inv_tau);
  scale(v, 0, len, T(1) / sum, y, ystep);
}

// ----- tau = 1 --------------------------------------------------------------------
// When 1/tau is exactly 1 the soft sample skips the second log and the maximum of x + g,
// since e^(x + g) = e^x / E:
//   y_c = a_c / sum(a),   a_c = exp(x_c - max(x)) * 2^N / E_c,   E_c = -log(U_c),
// with N = kUnitScale (62 for float32, 512 for float64), applied inside exp_scaled so
// nothing rounds twice.  Bounds (1/E <= 2^33 resp. 2^65, E <= 23 resp. 46, rows of at
// most 2^31 - 1 elements): every a_c and the sum stay finite, and an a_c that underflows
// belongs to a y_c below half the smallest subnormal, so tiny y_c keep their relative
// accuracy as in the general path.  y_c = a_c / sum is a division, so a row with one
// nonzero a_c gives exactly 1.  Sums: the same 16 partial sums and segments; rows with
// NaN, +inf or only -inf give a NaN sum and a NaN row.
template <class T>
constexpr int kUnitScale = sizeof(T) == 4 ? 62 : 512;

// max of x over elements [begin, end) of a row (NaN ignored; exact in any order).
template <class T>
T row_max(const T* x, int64_t step, int64_t begin, int64_t end) {
  T m = -std::numeric_limits<T>::infinity();
  int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
  if (step == 1) {
    using V = Vec<T>;
    V vm = lanes::splat<V>(m);
    for (; c + kW<T> <= end; c += kW<T>) {
      const V v = lanes::load<V>(x + c);
      vm = lanes::select(v > vm, v, vm);
    }
    for (int j = 0; j < kW<T>; ++j)
      if (vm[j] > m) m = vm[j];
  }
#endif
  for (; c < end; ++c)
    if (x[c * step] > m) m = x[c * step];
  return m;
}

// a_c for elements [begin, end) of row q (begin a multiple of kChunk) into a (the row's
// element 0, contiguous); returns the segment's sum, element c in partial (c - begin) % 16.
template <class T>
T unit_exp_sum(const T* x, int64_t step, int64_t begin, int64_t end, T xmax, PhiloxKey key,
               uint64_t q, T* a) {
  constexpr int N = kUnitScale<T>;
  ChunkBuffers<T> buf;
#ifdef GS_HAVE_VECTOR_EXT
  constexpr int wpe = words_per_element<T>();
  using V = Vec<T>;
  using U = lanes::UInt<V>;
  constexpr int W = kW<T>;
  V vacc[kSub<T>] = {};
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    chunk_words<T>(key, q, c0, n, buf.words);
    // padded lanes: exp(-inf) = +0 leaves the partial sums as the scalar loop leaves them
    const T* xc = chunk_x(x, step, c0, n, buf.x);
    for (int64_t i = 0; i < n; i += kLanes)
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = i + k * W;
        const V E = bits_to_exponential<V>(lanes::load_bits<U>(buf.words + o * wpe));
        const V e = vmath::exp_scaled<N>(lanes::load<V>(xc + o) - xmax) / E;
        lanes::store(buf.v + o, e);
        vacc[k] = vacc[k] + e;
      }
    std::memcpy(a + c0, buf.v, static_cast<size_t>(n) * sizeof(T));
  }
  T acc[kLanes];
  spill<T>(vacc, acc);
#else
  T acc[kLanes] = {};
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    chunk_words<T>(key, q, c0, n, buf.words);
    for (int64_t i = 0; i < n; ++i) {
      const T E = bits_to_exponential<T>(element_bits(buf.words, i, T()));
      const T e = vmath::exp_scaled<N>(x[(c0 + i) * step] - xmax) / E;
      a[c0 + i] = e;
      acc[(c0 + i - begin) % kLanes] = acc[(c0 + i - begin) % kLanes] + e;
    }
  }
#endif
  return tree_sum(acc);
}

// The tau = 1 soft sample of one row: a in v (contiguous), then y (y may be v itself).
template <class T>
void unit_softmax_row(const T* x, int64_t step, int64_t len, PhiloxKey key, uint64_t q, T* v, T* y,
                      int64_t ystep) {
  const T xmax = row_max(x, step, 0, len);
  T sum = unit_exp_sum(x, step, 0, std::min(len, kSegment), xmax, key, q, v);
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum = sum + unit_exp_sum(x, step, b, std::min(len, b + kSegment), xmax, key, q, v);
  if (sum != sum) return fill_nan(y, ystep, len);
  scale<true>(v, 0, len, sum, y, ystep);
}

// dot = sum(grad_y * y_soft) over elements [begin, end) of a row, in the order of the
// forward sums (partial sum (c - begin) % 16, combined pairwise).
template <class T>
T segment_dot(const T* g, int64_t gst, const T* s, int64_t sst, int64_t begin, int64_t end) {
  int64_t c = begin;
  T acc[kLanes] = {};
#ifdef GS_HAVE_VECTOR_EXT
  if (gst == 1 && sst == 1) {
    using V = Vec<T>;
    V vacc[kSub<T>] = {};
    for (; c + kLanes <= end; c += kLanes)
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = c + k * kW<T>;
        vacc[k] = lanes::fma(lanes::load<V>(g + o), lanes::load<V>(s + o), vacc[k]);
      }
    spill<T>(vacc, acc);
  }
#endif
  for (; c + kLanes <= end; c += kLanes)
    for (int j = 0; j < kLanes; ++j)
      acc[j] = lanes::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
  for (int j = 0; c + j < end; ++j) acc[j] = lanes::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
  return tree_sum(acc);
}

// dot of a whole row, segment by segment like the forward sums.
template <class T>
T row_dot(const T* g, int64_t gst, const T* s, int64_t sst, int64_t len) {
  T dot = segment_dot(g, gst, s, sst, 0, std::min(len, kSegment));
  for (int64_t b = kSegment; b < len; b += kSegment)
    dot = dot + segment_dot(g, gst, s, sst, b, std::min(len, b + kSegment));
  return dot;
}

// The one-hot of a row (or NaN when the row has no defined sample).
template <class T>
void write_hard(T* yr, int64_t step, int64_t len, const RowStats<T>& st) {
  if (!st.defined()) return fill_nan(yr, step, len);
  for (int64_t c = 0; c < len; ++c) yr[c * step] = T(0);
  yr[st.argmax * step] = T(1);
}

// What a forward call needs per row, from its ForwardArgs.
template <class T>
struct Fwd {
  const ForwardArgs<T>& a;
  T* soft;  // where the soft sample goes (null: none)
  const RowSpec* soft_spec;
  explicit Fwd(const ForwardArgs<T>& args)
      : a(args),
        soft(args.hard ? args.y_soft : args.y),
        soft_spec(args.hard ? &args.ss : &args.ys) {}
  T itau(int64_t r) const { return a.inv_taus ? a.inv_taus[r] : a.inv_tau; }
  // The row's soft sample takes the tau = 1 path (see unit_exp_sum).
  bool unit(int64_t r) const { return soft && !a.log && itau(r) == T(1); }
  // After pass 1: the one-hot, or the index for categorical.
  void finish(int64_t r, const RowStats<T>& st) const {
    if (a.index) a.index[r] = st.defined() ? st.argmax : -1;
    if (a.hard) write_hard(a.y + a.ys.offset(r), a.ys.step, a.xs.len, st);
  }
  bool needs_stats() const { return a.hard || a.index; }
};

// ----- short rows, vectorised across rows -----------------------------------------
// Rows of at most kShortMax elements are computed kW rows at a time with one row per
// vector lane, so that per-row overhead and the unused lanes of a short row cost
// nothing.  Every lane performs exactly the row-wise operations in the row-wise order:
// the same max/argmax scan, the same exp, the same 16 partial sums (partial m holds
// element m, then m + 16, ...) and the same pairwise combination, so the results are
// bitwise those of the row-wise path (tests/test_targets.py compares the two).
constexpr int64_t kShortMax = 32;
std::atomic<bool> g_short_rows{true};  // switch for that test only

#ifdef GS_HAVE_VECTOR_EXT
template <class T>
bool use_short_rows(int64_t len) {
  return len <= kShortMax && g_short_rows.load(std::memory_order_relaxed);
}

// Noise of rows r0 .. r0 + g - 1 (g <= kW<T>) of length len <= kShortMax: the Philox
// blocks of all rows are computed together (lane = (row, block)); g holds row i at
// g + i * stride: the Gumbel noise, E = -log(U) (exponential: for tau = 1) or the
// logistic noise.  Returns stride (elements).
enum class Draw { gumbel, exponential, logistic };

template <class T>
struct ShortNoise {
  static constexpr int64_t kMaxWords = kShortMax * words_per_element<T>();
  static constexpr int64_t kStep = 4 * philox::kBlockLanes;  // words per Philox step
  static constexpr int64_t kWords = ((kW<T> * kMaxWords + kStep - 1) / kStep) * kStep;
  alignas(64) uint32_t words[kWords];
  alignas(64) T g[kWords / words_per_element<T>() + kW<T>];

  int64_t fill(PhiloxKey key, uint64_t first_row, int64_t r0, int64_t nrows, int64_t len,
               Draw draw = Draw::gumbel) {
    constexpr int wpe = words_per_element<T>();
    constexpr int BL = philox::kBlockLanes;
    const int64_t nb = (len * wpe + 3) / 4;  // blocks per row
    if (nb == 0) return 0;                   // rows of length 0: no noise
    const int64_t nblocks = nrows * nb;
    // Lane l = (row l / nb, block l % nb); spare lanes repeat the last block.  l / nb
    // is a multiply and shift, exact since l * (ceil(2^16 / nb) * nb - 2^16) < 2^16
    // (l < 8 * 16 here).
    using philox::VU32;
    VU32 iota;
    for (int j = 0; j < BL; ++j) iota[j] = static_cast<uint32_t>(j);
    const uint32_t nb32 = static_cast<uint32_t>(nb);
    const uint32_t inv = (65536u + nb32 - 1) / nb32;
    const uint32_t last = static_cast<uint32_t>(nblocks - 1);
    const uint64_t q0 = first_row + static_cast<uint64_t>(r0);
    const uint32_t q0_lo = static_cast<uint32_t>(q0), q0_hi = static_cast<uint32_t>(q0 >> 32);
    for (int64_t l0 = 0; l0 < nblocks; l0 += BL) {
      VU32 l = iota + static_cast<uint32_t>(l0);
      l = (VU32)(l > last ? (VU32{} + last) : l);
      const VU32 row = (l * inv) >> 16;
      VU32 c0 = l - row * nb32;
      VU32 c2 = row + q0_lo;                          // low word of the row number ...
      VU32 c3 = (VU32{} + q0_hi) - (VU32)(c2 < row);  // ... and the high word, with carry
      VU32 c1 = VU32{};
      philox::block_lanes(c0, c1, c2, c3, key);
      philox::store_blocks(c0, c1, c2, c3, words + 4 * l0);
    }
    using V = Vec<T>;
    using U = lanes::UInt<V>;
    const int64_t nelem = nblocks * 4 / wpe;
    for (int64_t i = 0; i < nelem; i += kW<T>) {
      const U b = lanes::load_bits<U>(words + i * wpe);
      lanes::store(g + i, draw == Draw::exponential ? bits_to_exponential<V>(b)
                          : draw == Draw::logistic  ? bits_to_logistic<V>(b)
                                                    : bits_to_gumbel<V>(b));
    }
    return nb * 4 / wpe;
  }
};

// Runs body(r0, n) over groups of kW<T> rows (n <= kW<T> rows each), statically split
// over threads.
template <class T, class Body>
void for_groups(int64_t nrows, int64_t len, Body&& body) {
  const int64_t ngroups = (nrows + kW<T> - 1) / kW<T>;
  const int nthreads = static_cast<int>(std::min<int64_t>(threads_for(nrows, len), ngroups));
  for_rows(ngroups, nthreads, [&](int64_t grp, int) {
    const int64_t r0 = grp * kW<T>;
    body(r0, std::min<int64_t>(kW<T>, nrows - r0));
  });
}

template <class T>
void forward_short_group(const Fwd<T>& f, int64_t r0, int64_t nrows) {
  using V = Vec<T>;
  using I = lanes::Int<V>;
  constexpr int W = kW<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const ForwardArgs<T>& a = f.a;
  const int64_t len = a.xs.len;
  // Per lane: 1/tau and whether the row takes the tau = 1 path (see unit_exp_sum); a
  // group may mix both when tau is per row.  Lanes past the last row: 1/tau = 1,
  // general path, never written out.
  V itau = lanes::splat<V>(T(1));
  I unit{};
  I flat{};  // lanes whose 1/tau is 0 (tau -> infinity, see flatten_row): 1/tau = 1 here
  bool any_unit = false, any_general = false, any_flat = false;
  for (int i = 0; i < nrows; ++i) {
    itau[i] = f.itau(r0 + i);
    if (itau[i] == T(0)) {
      itau[i] = T(1);
      flat[i] = -1;
      any_flat = true;
    }
    const bool u = f.unit(r0 + i);
    unit[i] = u ? -1 : 0;
    any_unit = any_unit || u;
    any_general = any_general || !u;
  }
  ShortNoise<T> noise;
  const int64_t gs =
      noise.fill(a.key, a.first_row, r0, nrows, len, any_unit ? Draw::exponential : Draw::gumbel);
  // Transposed copies: xt[c * W + i] = element c of row i, the same for the noise;
  // lanes past the last row get x = -inf and noise 1 (finite, never written out).
  alignas(64) T xt[kShortMax * W];
  alignas(64) T gt[kShortMax * W];
  for (int i = 0; i < W; ++i) {
    if (i < nrows) {
      const T* xr = a.x + a.xs.offset(r0 + i);
      const T* gr = noise.g + i * gs;
      for (int64_t c = 0; c < len; ++c) {
        xt[c * W + i] = xr[c * a.xs.step];
        gt[c * W + i] = gr[c];
      }
      if (a.mask) {
        const uint8_t* mr = a.mask + a.ms.offset(r0 + i);
        for (int64_t c = 0; c < len; ++c)
          if (!mr[c * a.ms.step]) xt[c * W + i] = ninf;
      }
    } else {
      for (int64_t c = 0; c < len; ++c) {
        xt[c * W + i] = ninf;
        gt[c * W + i] = T(1);
      }
    }
  }
  // Pass 1 on v = x + g (max, first argmax, NaN) as in noisy_logits, for the rows of the
  // general path and for the one-hot; g = -log(E) exactly as bits_to_gumbel computes it
  // when the noise was drawn as E.
  V v[kShortMax];
  V vmax = lanes::splat<V>(ninf);
  I vidx{}, vnan{};
  if (any_general || a.hard)
    for (int64_t c = 0; c < len; ++c) {
      V gc = lanes::load<V>(gt + c * W);
      if (any_unit) gc = -vmath::log(gc);
      const V vc = lanes::load<V>(xt + c * W) + gc;
      v[c] = vc;
      const I greater = vc > vmax;
      vmax = lanes::select(greater, vc, vmax);
      vidx = greater ? (I{} + static_cast<int>(c)) : vidx;
      vnan |= (vc != vc);
    }
  T* soft = f.soft;
  V res[kShortMax];  // the soft sample (or its log) of every lane
  V unit_sum{};      // tau = 1 lanes: the sum, NaN exactly for rows with no sample
  if (soft && any_general) {
    if (any_flat)  // as flatten_row, on the flat lanes only
      for (int64_t c = 0; c < len; ++c) v[c] = lanes::select(flat & (v[c] != ninf), vmax, v[c]);
    V acc[kLanes] = {};
    for (int64_t c = 0; c < len; ++c) {
      v[c] = (v[c] - vmax) * itau;
      res[c] = vmath::exp(v[c]);
      acc[c % kLanes] = acc[c % kLanes] + res[c];
    }
    const V sum = tree_sum(acc);
    if (a.log) {
      const V lse = vmath::log(sum);
      for (int64_t c = 0; c < len; ++c) res[c] = v[c] - lse;
    } else {
      const V inv_sum = T(1) / sum;
      for (int64_t c = 0; c < len; ++c) res[c] = res[c] * inv_sum;
    }
  }
  if (soft && any_unit) {
    V xmax = lanes::splat<V>(ninf);
    for (int64_t c = 0; c < len; ++c) {
      const V xc = lanes::load<V>(xt + c * W);
      xmax = lanes::select(xc > xmax, xc, xmax);
    }
    V acc[kLanes] = {};
    V u[kShortMax];
    for (int64_t c = 0; c < len; ++c) {
      u[c] = vmath::exp_scaled<kUnitScale<T>>(lanes::load<V>(xt + c * W) - xmax) /
             lanes::load<V>(gt + c * W);
      acc[c % kLanes] = acc[c % kLanes] + u[c];
    }
    unit_sum = tree_sum(acc);
    for (int64_t c = 0; c < len; ++c)
      res[c] = any_general ? lanes::select(unit, u[c] / unit_sum, res[c]) : u[c] / unit_sum;
  }
  if (soft)
    for (int64_t c = 0; c < len; ++c) lanes::store(xt + c * W, res[c]);
  for (int i = 0; i < nrows; ++i) {
    RowStats<T> st;
    st.max = vmax[i];
    st.argmax = vidx[i];
    st.nan = vnan[i] != 0;
    if (soft) {
      T* sr = soft + f.soft_spec->offset(r0 + i);
      const int64_t step = f.soft_spec->step;
      if (unit[i] ? unit_sum[i] == unit_sum[i] : st.defined())
        for (int64_t c = 0; c < len; ++c) sr[c * step] = xt[c * W + i];
      else
        fill_nan(sr, step, len);
    }
    f.finish(r0 + i, st);
  }
}
#else
template <class T>
bool use_short_rows(int64_t) {
  return false;
}
#endif

// ----- tiles of strided rows ----------------------------------------------------
// Rows whose elements are strided (a sampled axis other than the last of a C-ordered
// array, say) are processed kTileRows at a time: the tile is gathered into contiguous
// rows, reading the kTileRows rows' element k together (adjacent in memory for the
// usual layouts, so every cache line fetched is used), computed row by row exactly as
// contiguous rows are, and scattered back the same way.  Same arithmetic, same bits.
constexpr int64_t kTileRows = 16;
// Tiles larger than this (per thread) fall back to row-by-row strided access.
constexpr int64_t kTileMaxBytes = int64_t{4} << 20;

template <class T>
bool use_tiles(bool strided, int64_t len) {
  return strided && kTileRows * len * static_cast<int64_t>(sizeof(T)) <= kTileMaxBytes;
}

// tile[i * len + k] = element k of row r0 + i, for i < g.
template <class T>
void gather_tile(const T* base, const RowSpec& sp, int64_t r0, int64_t g, T* tile) {
  int64_t off[kTileRows];
  for (int64_t i = 0; i < g; ++i) off[i] = sp.offset(r0 + i);
  for (int64_t k = 0; k < sp.len; ++k)
    for (int64_t i = 0; i < g; ++i) tile[i * sp.len + k] = base[off[i] + k * sp.step];
}

// gather_tile with a mask: elements whose mask byte is 0 become -inf.
template <class T>
void gather_tile_masked(const T* base, const RowSpec& sp, const uint8_t* mask, const RowSpec& ms,
                        int64_t r0, int64_t g, T* tile) {
  int64_t off[kTileRows], moff[kTileRows];
  for (int64_t i = 0; i < g; ++i) off[i] = sp.offset(r0 + i), moff[i] = ms.offset(r0 + i);
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < sp.len; ++k)
    for (int64_t i = 0; i < g; ++i)
      tile[i * sp.len + k] = mask[moff[i] + k * ms.step] ? base[off[i] + k * sp.step] : ninf;
}

template <class T>
void scatter_tile(T* base, const RowSpec& sp, int64_t r0, int64_t g, const T* tile) {
  int64_t off[kTileRows];
  for (int64_t i = 0; i < g; ++i) off[i] = sp.offset(r0 + i);
  for (int64_t k = 0; k < sp.len; ++k)
    for (int64_t i = 0; i < g; ++i) base[off[i] + k * sp.step] = tile[i * sp.len + k];
}

// Runs body(r0, g, tile_scratch) over tiles of kTileRows rows, statically split over
// threads, with `per_thread` elements of scratch per thread (allocated up front, so a
// failed allocation happens before anything is written).
template <class T, class Body>
void for_tiles(int64_t nrows, int64_t len, int64_t per_thread, Body&& body) {
  const int64_t ntiles = (nrows + kTileRows - 1) / kTileRows;
  const int nthreads = static_cast<int>(std::min<int64_t>(threads_for(nrows, len), ntiles));
  std::vector<T> scratch(static_cast<size_t>(nthreads) * static_cast<size_t>(per_thread));
  for_rows(ntiles, nthreads, [&](int64_t t, int tid) {
    const int64_t r0 = t * kTileRows;
    body(r0, std::min(kTileRows, nrows - r0), scratch.data() + tid * per_thread);
  });
}

}  // namespace

template <class T>
void noise_rows(T* out, const RowSpec& o, Noise kind, PhiloxKey key, uint64_t first_row) {
  // Elements [begin, end) of absolute row q into dst (begin a multiple of kChunk).
  auto fill = [&](uint64_t q, int64_t begin, int64_t end, T* dst, int64_t step) {
    ChunkBuffers<T> buf;
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int64_t n = std::min(kChunk, end - c0);
      noise_chunk(key, q, c0, n, buf.words, buf.g, kind);
      if (step == 1)
        std::memcpy(dst + c0, buf.g, static_cast<size_t>(n) * sizeof(T));
      else
        for (int64_t i = 0; i < n; ++i) dst[(c0 + i) * step] = buf.g[i];
    }
  };
  auto row_q = [&](int64_t r) { return first_row + static_cast<uint64_t>(r); };
#ifdef GS_HAVE_VECTOR_EXT
  if (use_short_rows<T>(o.len)) {
    for_groups<T>(o.nrows, o.len, [&](int64_t r0, int64_t n) {
      ShortNoise<T> noise;
      const int64_t gs = noise.fill(key, first_row, r0, n, o.len,
                                    kind == Noise::logistic ? Draw::logistic : Draw::gumbel);
      for (int64_t i = 0; i < n; ++i) {
        T* row = out + o.offset(r0 + i);
        for (int64_t c = 0; c < o.len; ++c) row[c * o.step] = noise.g[i * gs + c];
      }
    });
    return;
  }
#endif
  if (use_tiles<T>(o.step != 1, o.len)) {
    for_tiles<T>(o.nrows, o.len, kTileRows * o.len, [&](int64_t r0, int64_t g, T* tile) {
      for (int64_t i = 0; i < g; ++i) fill(row_q(r0 + i), 0, o.len, tile + i * o.len, 1);
      scatter_tile(out, o, r0, g, tile);
    });
    return;
  }
  if (split_rows(o.nrows, o.len)) {
    for (int64_t r = 0; r < o.nrows; ++r)
      for_segments(o.len, [&](int64_t, int64_t begin, int64_t end) {
        fill(row_q(r), begin, end, out + o.offset(r), o.step);
      });
    return;
  }
  for_rows(o.nrows, threads_for(o.nrows, o.len),
           [&](int64_t r, int) { fill(row_q(r), 0, o.len, out + o.offset(r), o.step); });
}

template <class T>
void forward_rows(const ForwardArgs<T>& a) {
  const Fwd<T> f(a);
  const int64_t len = a.xs.len;
  const RowSpec& xs = a.xs;
  T* const soft = f.soft;
  const RowSpec& soft_spec = *f.soft_spec;
  const PhiloxKey key = a.key;
  auto row_q = [&](int64_t r) { return a.first_row + static_cast<uint64_t>(r); };
#ifdef GS_HAVE_VECTOR_EXT
  if (use_short_rows<T>(len)) {
    for_groups<T>(xs.nrows, len, [&](int64_t r0, int64_t n) { forward_short_group(f, r0, n); });
    return;
  }
#endif
  if (!a.mask && split_rows(xs.nrows, len)) {
    // Few long rows: one row at a time, its segments over the threads.
    const int64_t nseg = segments(len);
    std::vector<RowStats<T>> seg_st(static_cast<size_t>(nseg));
    std::vector<T> seg_sum(static_cast<size_t>(nseg));
    std::vector<T> staged;  // a strided soft destination is staged in one row buffer
    if (soft && soft_spec.step != 1) staged.resize(static_cast<size_t>(len));
    auto total = [&] {
      T sum = seg_sum[0];
      for (int64_t k = 1; k < nseg; ++k) sum = sum + seg_sum[k];
      return sum;
    };
    for (int64_t r = 0; r < xs.nrows; ++r) {
      const T* xr = a.x + xs.offset(r);
      const uint64_t q = row_q(r);
      const T itau = f.itau(r);
      const bool unit = f.unit(r);
      T* soft_row = soft ? soft + soft_spec.offset(r) : nullptr;
      T* v = soft ? (staged.empty() ? soft_row : staged.data()) : nullptr;
      RowStats<T> st;
      if (f.needs_stats() || !unit) {
        for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
          seg_st[k] = noisy_logits(xr, xs.step, begin, end, key, q, unit ? nullptr : v);
        });
        st = combine(seg_st.data(), nseg);
      }
      if (unit) {
        for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
          seg_sum[k] = row_max(xr, xs.step, begin, end);
        });
        T xmax = seg_sum[0];
        for (int64_t k = 1; k < nseg; ++k) xmax = std::max(xmax, seg_sum[k]);
        for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
          seg_sum[k] = unit_exp_sum(xr, xs.step, begin, end, xmax, key, q, v);
        });
        const T sum = total();
        if (sum == sum) {
          for_segments(len, [&](int64_t, int64_t begin, int64_t end) {
            scale<true>(v, begin, end, sum, soft_row, soft_spec.step);
          });
        } else {
          fill_nan(soft_row, soft_spec.step, len);
        }
      } else if (soft && st.defined()) {
        const bool flat = itau == T(0);  // tau -> infinity: see flatten_row
        const T it = flat ? T(1) : itau;
        for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
          if (flat) flatten_row(v, begin, end, st.max);
          seg_sum[k] = a.log ? exp_sum<false>(v, begin, end, st.max, it)
                             : exp_sum(v, begin, end, st.max, it);
        });
        const T sum = total();
        const T lse = a.log ? vmath::log(sum) : T(0);
        const T inv_sum = T(1) / sum;
        for_segments(len, [&](int64_t, int64_t begin, int64_t end) {
          if (a.log)
            log_scale(v, begin, end, st.max, it, lse, soft_row, soft_spec.step);
          else
            scale(v, begin, end, inv_sum, soft_row, soft_spec.step);
        });
      } else if (soft) {
        fill_nan(soft_row, soft_spec.step, len);
      }
      f.finish(r, st);
    }
    return;
  }
  const bool strided = xs.step != 1 || (a.y && a.ys.step != 1) || (soft && soft_spec.step != 1);
  // A mask is applied as strided rows are gathered into tiles, and as contiguous rows
  // are copied into a row buffer below (rows of up to masked_row_limit elements; the
  // Python layer masks longer ones itself).
  if (use_tiles<T>(strided || (a.mask && a.ms.step != 1), len)) {
    for_tiles<T>(xs.nrows, len, kTileRows * len, [&](int64_t r0, int64_t g, T* tile) {
      RowStats<T> st[kTileRows];
      if (a.mask)
        gather_tile_masked(a.x, xs, a.mask, a.ms, r0, g, tile);
      else
        gather_tile(a.x, xs, r0, g, tile);
      for (int64_t i = 0; i < g; ++i) {
        T* row = tile + i * len;  // x, then v = x + g, then the soft sample, in place
        const int64_t r = r0 + i;
        if (f.unit(r)) {
          if (f.needs_stats())
            st[i] = noisy_logits(row, 1, 0, len, key, row_q(r), static_cast<T*>(nullptr));
          unit_softmax_row(row, 1, len, key, row_q(r), row, row, 1);
          continue;
        }
        st[i] = noisy_logits(row, 1, 0, len, key, row_q(r), soft ? row : nullptr);
        if (soft) {
          if (st[i].defined())
            softmax_from_noisy(row, len, st[i].max, f.itau(r), a.log, row, 1);
          else
            fill_nan(row, 1, len);
        }
      }
      if (soft) scatter_tile(soft, soft_spec, r0, g, tile);
      if (a.index)
        for (int64_t i = 0; i < g; ++i) a.index[r0 + i] = st[i].defined() ? st[i].argmax : -1;
      if (a.hard) {
        for (int64_t i = 0; i < g; ++i) write_hard(tile + i * len, 1, len, st[i]);
        scatter_tile(a.y, a.ys, r0, g, tile);
      }
    });
    return;
  }
  // A strided soft destination is staged in a row buffer per thread, allocated here,
  // before any output is written, so that a failed allocation leaves `out` untouched.
  const bool staged = soft != nullptr && soft_spec.step != 1;
  const int nthreads = threads_for(xs.nrows, len);
  std::vector<T> scratch, masked;
  if (staged) scratch.resize(static_cast<size_t>(nthreads) * static_cast<size_t>(len));
  if (a.mask) masked.resize(static_cast<size_t>(nthreads) * static_cast<size_t>(len));

  for_rows(xs.nrows, nthreads, [&](int64_t r, int tid) {
    const T* xr = a.x + xs.offset(r);
    if (a.mask) {  // contiguous rows here: x and mask both step 1
      T* xm = masked.data() + static_cast<int64_t>(tid) * len;
      const uint8_t* mr = a.mask + a.ms.offset(r);
      constexpr T ninf = -std::numeric_limits<T>::infinity();
      int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
      using V = Vec<T>;
      using I = lanes::Int<V>;
      for (; c + kW<T> <= len; c += kW<T>) {
        I mv;
        for (int j = 0; j < kW<T>; ++j) mv[j] = mr[c + j];
        lanes::store(xm + c, lanes::select(mv != 0, lanes::load<V>(xr + c), lanes::splat<V>(ninf)));
      }
#endif
      for (; c < len; ++c) xm[c] = mr[c] ? xr[c] : ninf;
      xr = xm;
    }
    const uint64_t q = row_q(r);
    T* soft_row = soft ? soft + soft_spec.offset(r) : nullptr;
    T* v = soft ? (staged ? scratch.data() + static_cast<int64_t>(tid) * len : soft_row) : nullptr;
    if (f.unit(r)) {
      RowStats<T> st;
      if (f.needs_stats()) st = noisy_logits(xr, xs.step, 0, len, key, q, static_cast<T*>(nullptr));
      unit_softmax_row(xr, xs.step, len, key, q, v, soft_row, soft_spec.step);
      f.finish(r, st);
      return;
    }
    const RowStats<T> st = noisy_logits(xr, xs.step, 0, len, key, q, v);
    if (soft) {
      if (st.defined())
        softmax_from_noisy(v, len, st.max, f.itau(r), a.log, soft_row, soft_spec.step);
      else
        fill_nan(soft_row, soft_spec.step, len);
    }
    f.finish(r, st);
  });
}

// The NaN of a backward row [begin, end) (out = y_soft * (grad_y - dot) / tau) made
// canonical.  With a finite dot every grad_y and y_soft of the row is finite (a NaN or
// infinite one makes the fused sum NaN or infinite), and a NaN can only come from
// 0 * inf where the inf is an overflow of a finite value (y_soft = 0 and grad_y - dot
// overflowing, or 1/tau rounded to 0 and the product overflowing): the exact value is 0,
// which it becomes.  Otherwise it becomes the canonical NaN.
template <class T>
GS_COLD void fix_nan(T* o, int64_t ost, int64_t begin, int64_t end, T dot) {
  const T nan_as = dot - dot == T(0) ? T(0) : kNaN<T>;
  for (int64_t i = begin; i < end; ++i)
    if (o[i * ost] != o[i * ost]) o[i * ost] = nan_as;
}

template <class T>
void backward_rows(const T* grad_y, const RowSpec& gs, const T* y_soft, const RowSpec& ss, T* out,
                   const RowSpec& os, T inv_tau, const T* inv_taus) {
  const int64_t len = gs.len;
  auto itau = [&](int64_t r) { return inv_taus ? inv_taus[r] : inv_tau; };
  // out = y_soft * (grad_y - dot) / tau on elements [begin, end).  Element c is read
  // before it is written, so out may be grad_y or y_soft itself.
  // NaN results are then made canonical by fix_nan, in a second pass over the rows
  // where one came out (the first only tests for them).
  auto apply = [&](const T* g, int64_t gst, const T* s, int64_t sst, T* o, int64_t ost,
                   int64_t begin, int64_t end, T dot, T inv_tau) {
    int64_t i = begin;
    bool nan = false;
#ifdef GS_HAVE_VECTOR_EXT
    if (gst == 1 && sst == 1 && ost == 1) {
      using V = Vec<T>;
      lanes::NanTest<V> vnan;
      for (; i + kW<T> <= end; i += kW<T>) {
        const V r = (lanes::load<V>(s + i) * (lanes::load<V>(g + i) - dot)) * inv_tau;
        lanes::store(o + i, r);
        vnan.add(r);
      }
#ifdef GS_HAVE_PARTIAL
      // The last, partial vector (short rows: all of it).  Its masked-off lanes compute
      // (0 * (0 - dot)) / tau, NaN only where dot is not finite (fix_nan's test below
      // then runs on a row that may well need it; it only changes NaN elements).
      if (i < end) {
        const int64_t n = end - i;
        const V r = (lanes::load_first(s + i, n) * (lanes::load_first(g + i, n) - dot)) * inv_tau;
        lanes::store_first(o + i, r, n);
        vnan.add(r);
        i = end;
      }
#endif
      nan = vnan.any();
    }
#endif
    for (; i < end; ++i) {
      const T r = (s[i * sst] * (g[i * gst] - dot)) * inv_tau;
      o[i * ost] = r;
      nan = nan || r != r;
    }
    if (nan) fix_nan(o, ost, begin, end, dot);
  };
  auto row = [&](const T* g, int64_t gst, const T* s, int64_t sst, T* o, int64_t ost, T inv_tau) {
    apply(g, gst, s, sst, o, ost, 0, len, row_dot(g, gst, s, sst, len), inv_tau);
  };
  if (split_rows(gs.nrows, len)) {
    const int64_t nseg = segments(len);
    std::vector<T> seg_dot(static_cast<size_t>(nseg));
    for (int64_t r = 0; r < gs.nrows; ++r) {
      const T* g = grad_y + gs.offset(r);
      const T* s = y_soft + ss.offset(r);
      T* o = out + os.offset(r);
      for_segments(len, [&](int64_t k, int64_t begin, int64_t end) {
        seg_dot[k] = segment_dot(g, gs.step, s, ss.step, begin, end);
      });
      T dot = seg_dot[0];
      for (int64_t k = 1; k < nseg; ++k) dot = dot + seg_dot[k];
      for_segments(len, [&](int64_t, int64_t begin, int64_t end) {
        apply(g, gs.step, s, ss.step, o, os.step, begin, end, dot, itau(r));
      });
    }
    return;
  }
  if (use_tiles<T>(gs.step != 1 || ss.step != 1 || os.step != 1, len)) {
    for_tiles<T>(gs.nrows, len, 2 * kTileRows * len, [&](int64_t r0, int64_t g, T* tile) {
      T* gt = tile;
      T* st = tile + kTileRows * len;
      gather_tile(grad_y, gs, r0, g, gt);
      gather_tile(y_soft, ss, r0, g, st);
      for (int64_t i = 0; i < g; ++i)
        row(gt + i * len, 1, st + i * len, 1, gt + i * len, 1, itau(r0 + i));
      scatter_tile(out, os, r0, g, gt);
    });
    return;
  }
  for_rows(gs.nrows, threads_for(gs.nrows, len), [&](int64_t r, int) {
    row(grad_y + gs.offset(r), gs.step, y_soft + ss.offset(r), ss.step, out + os.offset(r), os.step,
        itau(r));
  });
}

// ----- top k ---------------------------------------------------------------------
// k up to this keeps a sorted buffer while scanning v once (about one comparison per
// element); larger k select with nth_element and sort the first k.
constexpr int64_t kInsertK = 32;

template <class T>
void top_k_rows(const T* x, const RowSpec& xs, int64_t* out, int64_t k, PhiloxKey key,
                uint64_t first_row) {
  const int64_t len = xs.len;
  if (xs.nrows == 0 || k == 0) return;
  struct Item {
    T v;
    int64_t i;
  };
  // The k best of v (a row with a defined sample: no NaN, no +inf) into o.
  auto select = [&](const T* v, int64_t* o, Item* items, int64_t* idx) {
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    if (k <= kInsertK) {
      // Elements come in index order, so an equal value never displaces an earlier one.
      int64_t m = 0;
      for (int64_t c = 0; c < len; ++c) {
        const T val = v[c];
        int64_t pos;
        if (m == k) {
          if (!(val > items[k - 1].v)) continue;
          pos = k - 1;
        } else {
          pos = m++;
        }
        for (; pos > 0 && val > items[pos - 1].v; --pos) items[pos] = items[pos - 1];
        items[pos] = Item{val, c};
      }
      for (int64_t j = 0; j < k; ++j) o[j] = items[j].v == ninf ? -1 : items[j].i;
      return;
    }
    for (int64_t c = 0; c < len; ++c) idx[c] = c;
    auto better = [v](int64_t p, int64_t q) { return v[p] > v[q] || (v[p] == v[q] && p < q); };
    if (k < len) std::nth_element(idx, idx + k, idx + len, better);
    std::sort(idx, idx + k, better);
    for (int64_t j = 0; j < k; ++j) o[j] = v[idx[j]] == ninf ? -1 : idx[j];
  };
  auto finish = [&](int64_t r, const RowStats<T>& st, const T* v, Item* items, int64_t* idx) {
    int64_t* o = out + r * k;
    if (!st.defined()) return std::fill(o, o + k, int64_t{-1});
    select(v, o, items, idx);
  };
  const bool big_k = k > kInsertK;
#ifdef GS_HAVE_VECTOR_EXT
  if (use_short_rows<T>(len)) {
    // The noise of kW rows at once (ShortNoise), then v = x + g and the selection row by
    // row: the same sums as noisy_logits, so the same bits.
    for_groups<T>(xs.nrows, len, [&](int64_t r0, int64_t n) {
      ShortNoise<T> noise;
      const int64_t gs = noise.fill(key, first_row, r0, n, len);
      T v[kShortMax];
      Item items[kShortMax];
      int64_t idx[kShortMax];
      for (int64_t i = 0; i < n; ++i) {
        const T* xr = x + xs.offset(r0 + i);
        RowStats<T> st;
        for (int64_t c = 0; c < len; ++c) {
          v[c] = xr[c * xs.step] + noise.g[i * gs + c];
          st.nan = st.nan || v[c] != v[c];
          if (v[c] > st.max) st.max = v[c];
        }
        finish(r0 + i, st, v, items, idx);
      }
    });
    return;
  }
#endif
  if (split_rows(xs.nrows, len)) {
    const int64_t nseg = segments(len);
    std::vector<RowStats<T>> seg_st(static_cast<size_t>(nseg));
    std::vector<T> v(static_cast<size_t>(len));
    std::vector<int64_t> idx(big_k ? static_cast<size_t>(len) : 0);
    std::vector<Item> items(static_cast<size_t>(std::min(k, kInsertK)));
    for (int64_t r = 0; r < xs.nrows; ++r) {
      const T* xr = x + xs.offset(r);
      const uint64_t q = first_row + static_cast<uint64_t>(r);
      for_segments(len, [&](int64_t j, int64_t begin, int64_t end) {
        seg_st[j] = noisy_logits(xr, xs.step, begin, end, key, q, v.data());
      });
      finish(r, combine(seg_st.data(), nseg), v.data(), items.data(), idx.data());
    }
    return;
  }
  // Scratch per thread, allocated before anything is written.
  const int nthreads = threads_for(xs.nrows, len);
  std::vector<T> vbuf(static_cast<size_t>(nthreads) * static_cast<size_t>(len));
  std::vector<int64_t> ibuf(big_k ? static_cast<size_t>(nthreads) * static_cast<size_t>(len) : 0);
  std::vector<Item> items(static_cast<size_t>(nthreads) *
                          static_cast<size_t>(std::min(k, kInsertK)));
  for_rows(xs.nrows, nthreads, [&](int64_t r, int tid) {
    T* v = vbuf.data() + static_cast<int64_t>(tid) * len;
    const RowStats<T> st = noisy_logits(x + xs.offset(r), xs.step, 0, len, key,
                                        first_row + static_cast<uint64_t>(r), v);
    finish(r, st, v, items.data() + tid * std::min(k, kInsertK),
           big_k ? ibuf.data() + static_cast<int64_t>(tid) * len : nullptr);
  });
}

// ----- relaxed Bernoulli ------------------------------------------------------------
// Runs body(r, begin, end) over all rows, each whole or (few long rows) in segments
// spread over the threads; for elementwise work, where any split gives the same bits.
template <class Body>
void for_row_parts(int64_t nrows, int64_t len, Body&& body) {
  if (split_rows(nrows, len)) {
    for (int64_t r = 0; r < nrows; ++r)
      for_segments(len, [&](int64_t, int64_t begin, int64_t end) { body(r, begin, end); });
    return;
  }
  for_rows(nrows, threads_for(nrows, len), [&](int64_t r, int) { body(r, 0, len); });
}

// One element (lanes V or a scalar): v = x + L, z = v / tau,
// soft = sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) otherwise, e = exp(-|z|)
// (accurate in both tails, exact 0 and 1 at -inf and +inf); hard = 1 where v > 0,
// 0 where v <= 0, the canonical NaN where v is NaN.  z is NaN exactly where v is NaN or
// where v is +-inf and 1/tau rounded to 0 (inf * 0); there the soft sample is the hard
// one: NaN, or the tau -> infinity limit of sigmoid(+-inf / tau), 1 and 0.
template <class V, class S = typename lanes::Traits<V>::Scalar>
GS_INLINE void bernoulli_element(V x, V noise, V inv_tau, V& soft, V& hard) {
  using lanes::select;
  using lanes::splat;
  const V v = x + noise;
  const V z = v * inv_tau;
  const V e = vmath::exp(select(z > S(0), -z, z));
  const V d = S(1) + e;
  hard = select(v > S(0), splat<V>(S(1)), select(v == v, splat<V>(S(0)), splat<V>(kNaN<S>)));
  soft = select(z == z, select(z >= S(0), S(1) / d, e / d), hard);
}

template <class T>
void bernoulli_rows(const BernoulliArgs<T>& a) {
  const int64_t len = a.xs.len;
  // Where row r's results go: y gets the hard or the soft sample, y_soft (hard with
  // return_soft) the soft one.
  struct Dest {
    T* hard = nullptr;
    int64_t hstep = 0;
    T* soft = nullptr;
    int64_t sstep = 0;
  };
  auto dest = [&](int64_t r) {
    Dest d;
    T* y = a.y + a.ys.offset(r);
    if (a.hard) {
      d.hard = y;
      d.hstep = a.ys.step;
      if (a.y_soft) {
        d.soft = a.y_soft + a.ss.offset(r);
        d.sstep = a.ss.step;
      }
    } else {
      d.soft = y;
      d.sstep = a.ys.step;
    }
    return d;
  };
  // n results from element c0 on, contiguous in src, to dst (step).
  auto put = [](const T* src, T* dst, int64_t step, int64_t c0, int64_t n) {
    if (!dst) return;
    if (step == 1) return (void)std::memcpy(dst + c0, src, static_cast<size_t>(n) * sizeof(T));
    for (int64_t j = 0; j < n; ++j) dst[(c0 + j) * step] = src[j];
  };
#ifdef GS_HAVE_VECTOR_EXT
  if (use_short_rows<T>(len)) {
    for_groups<T>(a.xs.nrows, len, [&](int64_t r0, int64_t n) {
      ShortNoise<T> noise;
      const int64_t gs = noise.fill(a.key, a.first_row, r0, n, len, Draw::logistic);
      using V = Vec<T>;
      constexpr int W = kW<T>;
      // One row at a time on whole vectors: x, 1/tau and the noise gathered and padded
      // (0, 1 and 0; the padded lanes are never written out).
      alignas(64) T xb[kShortMax + W], tb[kShortMax + W], g[kShortMax + W];
      alignas(64) T soft[kShortMax + W], hard[kShortMax + W];
      for (int64_t c = len; c < kShortMax + W; ++c) xb[c] = T(0), tb[c] = T(1), g[c] = T(0);
      for (int64_t i = 0; i < n; ++i) {
        const T* xr = a.x + a.xs.offset(r0 + i);
        const T* tr = a.inv_tau + a.ts.offset(r0 + i);
        for (int64_t c = 0; c < len; ++c) {
          xb[c] = xr[c * a.xs.step];
          tb[c] = tr[c * a.ts.step];
          g[c] = noise.g[i * gs + c];
        }
        for (int64_t c = 0; c < len; c += W) {
          V sv, hv;
          bernoulli_element<V>(lanes::load<V>(xb + c), lanes::load<V>(g + c),
                               lanes::load<V>(tb + c), sv, hv);
          lanes::store(soft + c, sv);
          lanes::store(hard + c, hv);
        }
        const Dest d = dest(r0 + i);
        put(hard, d.hard, d.hstep, 0, len);
        put(soft, d.soft, d.sstep, 0, len);
      }
    });
    return;
  }
#endif
  for_row_parts(a.xs.nrows, len, [&](int64_t r, int64_t begin, int64_t end) {
    ChunkBuffers<T> buf;  // g: the noise, x: the logits, v: the soft sample
    alignas(64) T tb[kChunk + kLanes];
    alignas(64) T hb[kChunk + kLanes];
    const T* xr = a.x + a.xs.offset(r);
    const T* tr = a.inv_tau + a.ts.offset(r);
    const Dest d = dest(r);
    const uint64_t q = a.first_row + static_cast<uint64_t>(r);
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int64_t n = std::min(kChunk, end - c0);
      noise_chunk(a.key, q, c0, n, buf.words, buf.g, Noise::logistic);
      const T* xc = chunk_x(xr, a.xs.step, c0, n, buf.x);
      const T* tc = a.ts.step == 0 ? nullptr : chunk_x(tr, a.ts.step, c0, n, tb);
      int64_t i = 0;
#ifdef GS_HAVE_VECTOR_EXT
      using V = Vec<T>;
      const V t0 = lanes::splat<V>(tr[0]);
      for (; i < n; i += kW<T>) {
        V soft, hard;
        bernoulli_element<V>(lanes::load<V>(xc + i), lanes::load<V>(buf.g + i),
                             tc ? lanes::load<V>(tc + i) : t0, soft, hard);
        lanes::store(buf.v + i, soft);
        lanes::store(hb + i, hard);
      }
#endif
      for (; i < n; ++i) bernoulli_element<T>(xc[i], buf.g[i], tc ? tc[i] : tr[0], buf.v[i], hb[i]);
      put(hb, d.hard, d.hstep, c0, n);
      put(buf.v, d.soft, d.sstep, c0, n);
    }
  });
}

template <class T>
void bernoulli_backward_rows(const T* grad_y, const RowSpec& gs, const T* y_soft, const RowSpec& ss,
                             T* out, const RowSpec& os, const T* inv_tau, const RowSpec& ts) {
  // out = ((grad_y * s) * (1 - s)) / tau; element c is read before it is written, so out
  // may be grad_y or y_soft itself.
  for_row_parts(gs.nrows, gs.len, [&](int64_t r, int64_t begin, int64_t end) {
    const T* g = grad_y + gs.offset(r);
    const T* s = y_soft + ss.offset(r);
    const T* t = inv_tau + ts.offset(r);
    T* o = out + os.offset(r);
    int64_t c = begin;
#ifdef GS_HAVE_VECTOR_EXT
    if (gs.step == 1 && ss.step == 1 && os.step == 1 && (ts.step == 1 || ts.step == 0)) {
      using V = Vec<T>;
      for (; c + kW<T> <= end; c += kW<T>) {
        const V sv = lanes::load<V>(s + c);
        const V tv = ts.step ? lanes::load<V>(t + c) : lanes::splat<V>(t[0]);
        lanes::store(o + c, canonical(((lanes::load<V>(g + c) * sv) * (T(1) - sv)) * tv));
      }
    }
#endif
    for (; c < end; ++c) {
      const T sv = s[c * ss.step];
      o[c * os.step] = canonical(((g[c * gs.step] * sv) * (T(1) - sv)) * t[c * ts.step]);
    }
  });
}

// ----- Concrete log-density ------------------------------------------------------
// log(y) for any y (user data): vmath::log takes positive normal numbers only, so
// subnormals are scaled by 2^k first (k = 24 / 54, which makes them normal) and k ln 2
// taken off after; 0 gives -inf, +inf gives +inf, negatives and NaN give NaN.
template <class V>
GS_INLINE V log_any(V y) {
  using S = typename lanes::Traits<V>::Scalar;
  using lanes::select;
  using lanes::splat;
  constexpr S kScale = sizeof(S) == 4 ? S(0x1p24) : S(0x1p54);
  constexpr S kLogScale = sizeof(S) == 4 ? S(16.635532333438687) : S(37.42994775023705);
  constexpr S inf = std::numeric_limits<S>::infinity();
  const auto small = y < std::numeric_limits<S>::min();
  V l = vmath::log(select(small, y * kScale, y));
  l = select(small, l - kLogScale, l);
  l = select(y == S(0), splat<V>(-inf), l);
  l = select(y == inf, splat<V>(inf), l);
  return select((y < S(0)) | (y != y), splat<V>(std::numeric_limits<S>::quiet_NaN()), l);
}

// Pass 1 over elements [begin, end) of a row: s = x - tau l (l = log y, or y), or
// s = x - tau (l - lmin) when kShift (see concrete_shifted), stored contiguously in s_out
// (the row's element 0); the max of s; returns sum(s) and sets sum_l, each in 16 partial
// sums (element c in partial (c - begin) % 16).
template <bool kShift, class T>
T concrete_pass1(const T* y, int64_t ystep, const T* x, int64_t xstep, T tau, bool log_space,
                 int64_t begin, int64_t end, T* s_out, T& max, T& sum_l, T lmin) {
  T acc_s[kLanes] = {}, acc_l[kLanes] = {};
  auto one = [&](auto yv, auto xv, auto& ss, auto& ll, auto& mx) {
    const auto l = log_space ? yv : log_any(yv);
    const auto sv = kShift ? xv - tau * (l - lmin) : xv - tau * l;
    ss = ss + sv;
    ll = ll + l;
    mx = lanes::select(sv > mx, sv, mx);
    return sv;
  };
  int64_t c = begin;
  T m = -std::numeric_limits<T>::infinity();
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1 && xstep == 1) {
    using V = Vec<T>;
    V vs[kSub<T>] = {}, vl[kSub<T>] = {};
    V vm = lanes::splat<V>(m);
    for (; c + kLanes <= end; c += kLanes)
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = c + k * kW<T>;
        lanes::store(s_out + o,
                     one(lanes::load<V>(y + o), lanes::load<V>(x + o), vs[k], vl[k], vm));
      }
    spill<T>(vs, acc_s);
    spill<T>(vl, acc_l);
    for (int j = 0; j < kW<T>; ++j) m = std::max(m, vm[j]);  // NaN: caught by the sum
  }
#endif
  for (; c < end; ++c) {
    const int64_t j = (c - begin) % kLanes;
    s_out[c] = one(y[c * ystep], x[c * xstep], acc_s[j], acc_l[j], m);
  }
  max = m;
  sum_l = tree_sum(acc_l);
  return tree_sum(acc_s);
}

// The value of one row: cst + sum(s) - K logsumexp(s) - (log_space ? 0 : sum(l)), with
// s as concrete_pass1 computes it; s is the row's scratch, max gets the max of s.
template <bool kShift, class T>
T concrete_row(const T* yr, int64_t ystep, const T* xr, int64_t xstep, int64_t len, T t, T cst,
               bool log_space, T* s, T& max, T lmin = T(0)) {
  T sum_s = T(0), sum_l = T(0);
  max = -std::numeric_limits<T>::infinity();
  for (int64_t b = 0; b < len; b += kSegment) {
    T mx, sl;
    const T ss = concrete_pass1<kShift>(yr, ystep, xr, xstep, t, log_space, b,
                                        std::min(len, b + kSegment), s, mx, sl, lmin);
    sum_s = b == 0 ? ss : sum_s + ss;
    sum_l = b == 0 ? sl : sum_l + sl;
    max = std::max(max, mx);
  }
  // A +inf s (a zero y: the boundary of the simplex, where the density's limit depends
  // on tau) or only -inf s has no value, like NumPy's formula's inf - inf: NaN.
  if (!std::isfinite(max)) return kNaN<T>;
  // logsumexp(s) = max + log(sum(exp(s - max)))
  T sum_e = exp_sum<false>(s, 0, std::min(len, kSegment), max, T(1));
  for (int64_t b = kSegment; b < len; b += kSegment)
    sum_e = sum_e + exp_sum<false>(s, b, std::min(len, b + kSegment), max, T(1));
  const T lse = max + vmath::log(sum_e);
  T res = cst + sum_s - T(len) * lse;
  if (!log_space) res = res - sum_l;
  return canonical(res);
}

// Large s.  With a large tau (or tiny y), s = x - tau l is dominated by -tau l: x and cst
// are rounded away next to it, and the huge terms of sum(s) and K logsumexp(s), which
// cancel where y is near uniform, leave only their rounding errors; at a huge tau, tau l
// overflows (s = +inf) or the sums do (inf - inf), and the row is NaN although every y is
// positive and finite and the density is finite.  sum(s) - K logsumexp(s) does not
// change when every s is shifted by the same amount, so such a row (max s above
// kConcreteBig, or a NaN value) is computed again with s = x - tau (l - lmin), lmin the
// least log y: s <= x cannot overflow upwards (overflowing downwards gives -inf, a
// density below the smallest number), and is near x where y is near uniform.  Rows whose
// NaN is the contract's (a zero or NaN y, a NaN or +inf logit, only -inf s) stay NaN.
// Other rows are computed as before, bit for bit, at no extra cost.
template <class T>
constexpr T kConcreteBig = T(64);

template <class T>
GS_COLD T concrete_shifted(const T* yr, int64_t ystep, const T* xr, int64_t xstep, int64_t len, T t,
                           T cst, bool log_space, T* s) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  T lmin = inf;
  for (int64_t c = 0; c < len; ++c) {
    const T l = log_space ? yr[c * ystep] : log_any(yr[c * ystep]);
    const T xc = xr[c * xstep];
    if (l != l || l == -inf || xc != xc || xc == inf) return kNaN<T>;
    lmin = std::min(lmin, l);
  }
  if (lmin == inf) return kNaN<T>;  // every l is +inf: no s is finite
  T max;
  return concrete_row<true>(yr, ystep, xr, xstep, len, t, cst, log_space, s, max, lmin);
}

template <class T>
void concrete_rows(const T* y, const RowSpec& ys, const T* x, const RowSpec& xs, const T* tau,
                   const T* cst, int64_t tau_step, bool log_space, T* out) {
  const int64_t len = ys.len;
  const int nthreads = threads_for(ys.nrows, len);
  std::vector<T> scratch(static_cast<size_t>(nthreads) * static_cast<size_t>(len));
  for_rows(ys.nrows, nthreads, [&](int64_t r, int tid) {
    T* s = scratch.data() + static_cast<int64_t>(tid) * len;
    const T* yr = y + ys.offset(r);
    const T* xr = x + xs.offset(r);
    const T t = tau[r * tau_step];
    const T c = cst[r * tau_step];
    T max;
    T res = concrete_row<false>(yr, ys.step, xr, xs.step, len, t, c, log_space, s, max);
    if (res != res || max > kConcreteBig<T>)
      res = concrete_shifted(yr, ys.step, xr, xs.step, len, t, c, log_space, s);
    out[r] = res;
  });
}

// ----- float16 / bfloat16 ---------------------------------------------------------
// Elements per block of a conversion (blocks are spread over the threads).
constexpr int64_t kConvertBlock = int64_t{1} << 16;

template <class Body>
void for_blocks(int64_t n, Body&& body) {
  const int64_t nblocks = (n + kConvertBlock - 1) / kConvertBlock;
  for_rows(nblocks, threads_for(nblocks, std::min(n, kConvertBlock)),
           [&](int64_t b, int) { body(b * kConvertBlock, std::min(n, (b + 1) * kConvertBlock)); });
}

void half_to_float(const uint16_t* src, float* dst, int64_t n, bool bf16) {
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

void float_to_half(const float* src, uint16_t* dst, int64_t n, bool bf16) {
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

void set_short_rows(bool on) { g_short_rows.store(on, std::memory_order_relaxed); }

// Elementwise evaluation of one math primitive on this target's lanes (tests bound their
// error and compare targets): 0 = log, 1 = exp, 2 = log1p_reduced, 3 = bits_to_gumbel
// (input: the bits, as float32 / float64 of the same width).
template <class T>
void eval_primitive(int which, const T* in, T* out, int64_t n) {
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

void fill_table(KernelTable& t) {
  t.set_short_rows = &set_short_rows;
  t.eval_f32 = &eval_primitive<float>;
  t.eval_f64 = &eval_primitive<double>;
  t.concrete_f32 = &concrete_rows<float>;
  t.concrete_f64 = &concrete_rows<double>;
  t.half_to_float = &half_to_float;
  t.float_to_half = &float_to_half;
  t.noise_f32 = &noise_rows<float>;
  t.noise_f64 = &noise_rows<double>;
  t.top_k_f32 = &top_k_rows<float>;
  t.top_k_f64 = &top_k_rows<double>;
  t.bernoulli_f32 = &bernoulli_rows<float>;
  t.bernoulli_f64 = &bernoulli_rows<double>;
  t.bernoulli_backward_f32 = &bernoulli_backward_rows<float>;
  t.bernoulli_backward_f64 = &bernoulli_backward_rows<double>;
  t.forward_f32 = &forward_rows<float>;
  t.forward_f64 = &forward_rows<double>;
  t.backward_f32 = &backward_rows<float>;
  t.backward_f64 = &backward_rows<double>;
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax
