// The fused row kernels.  Each row is handled by one thread from start to end, in
// chunks of kChunk elements whose random words and noise stay in L1; the order of every
// floating-point operation within a row is fixed, so results do not depend on the
// thread count or on how the rows are split into calls.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
#include <omp.h>
#endif

#include "gumbel_softmax/gumbel.hpp"
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

// Runs body(r, tid) for r in [0, nrows) on nthreads threads, rows split statically;
// tid < nthreads indexes per-thread scratch.
template <class Body>
void for_rows(int64_t nrows, int nthreads, Body&& body) {
#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
  if (nthreads > 1) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < nrows; ++r) body(r, omp_get_thread_num());
    return;
  }
#endif
  (void)nthreads;
  for (int64_t r = 0; r < nrows; ++r) body(r, 0);
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

// One chunk of noise: g[i] for elements c0 .. c0 + n - 1 of absolute row q (vectorised:
// g is filled up to n rounded up to the vector width; the extra lanes are noise of
// later elements).
template <class T>
GS_INLINE void noise_chunk(PhiloxKey key, uint64_t q, int64_t c0, int64_t n, uint32_t* words,
                           T* g) {
  chunk_words<T>(key, q, c0, n, words);
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  using U = lanes::UInt<V>;
  for (int64_t i = 0; i < n; i += kW<T>) {
    const U b = lanes::load_bits<U>(words + i * words_per_element<T>());
    lanes::store(g + i, bits_to_gumbel<V>(b));
  }
#else
  for (int64_t i = 0; i < n; ++i) g[i] = bits_to_gumbel<T>(element_bits(words, i, T()));
#endif
}

template <class T>
void fill_nan(T* p, int64_t step, int64_t len) {
  for (int64_t c = 0; c < len; ++c) p[c * step] = std::numeric_limits<T>::quiet_NaN();
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

// Chunk buffers of one row pass, aligned for vector loads; padded by one vector.
template <class T>
struct ChunkBuffers {
  alignas(64) uint32_t words[kChunk * words_per_element<T>()];
  alignas(64) T g[kChunk];
  alignas(64) T x[kChunk + kLanes];
  alignas(64) T v[kChunk + kLanes];
};

// Pass 1: v = x + g, with its max, first argmax and NaN flag.  Writes v to v_out
// (contiguous, len elements) when it is non-null.
template <class T>
RowStats<T> noisy_logits(const T* x, int64_t step, int64_t len, PhiloxKey key, uint64_t q,
                         T* v_out) {
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
  for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
    const int64_t n = std::min(kChunk, len - c0);
    noise_chunk(key, q, c0, n, buf.words, buf.g);
    // x of the chunk: read in place when contiguous and whole, else gathered and padded.
    const T* xc = x + c0 * step;
    if (step != 1 || n % W != 0) {
      for (int64_t i = 0; i < n; ++i) buf.x[i] = xc[i * step];
      for (int64_t i = n; i < n + W; ++i) buf.x[i] = ninf;
      xc = buf.x;
    }
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
  if (st.argmax == len) st.argmax = 0;  // all -inf: undefined row, any index
  st.nan = lanes::any(vnan);
#else
  for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
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

// Passes 2 and 3 of the soft sample, in place on v (contiguous): e = exp((v - max) /
// tau) with its sum, then y = e / sum written to y (y may be v itself, step 1).
// Element c is added to partial sum c % 16 (vector lane c % 16).
template <class T>
void softmax_from_noisy(T* v, int64_t len, T max, T inv_tau, T* y, int64_t ystep) {
  int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  V vacc[kSub<T>] = {};
  for (; c + kLanes <= len; c += kLanes)
    for (int k = 0; k < kSub<T>; ++k) {
      T* p = v + c + k * kW<T>;
      const V e = vmath::exp((lanes::load<V>(p) - max) * inv_tau);
      lanes::store(p, e);
      vacc[k] = vacc[k] + e;
    }
  T acc[kLanes];
  spill<T>(vacc, acc);
#else
  T acc[kLanes] = {};
  for (; c + kLanes <= len; c += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T e = vmath::exp((v[c + j] - max) * inv_tau);
      v[c + j] = e;
      acc[j] = acc[j] + e;
    }
#endif
  for (int j = 0; c + j < len; ++j) {
    const T e = vmath::exp((v[c + j] - max) * inv_tau);
    v[c + j] = e;
    acc[j] = acc[j] + e;
  }
  const T inv_sum = T(1) / tree_sum(acc);
  int64_t i = 0;
#ifdef GS_HAVE_VECTOR_EXT
  if (ystep == 1)
    for (; i + kW<T> <= len; i += kW<T>) lanes::store(y + i, lanes::load<V>(v + i) * inv_sum);
#endif
  for (; i < len; ++i) y[i * ystep] = v[i] * inv_sum;
}

// dot = sum(grad_y * y_soft) of one row, in the order of the forward sums.
template <class T>
T row_dot(const T* g, int64_t gst, const T* s, int64_t sst, int64_t len) {
  int64_t c = 0;
  T acc[kLanes] = {};
#ifdef GS_HAVE_VECTOR_EXT
  if (gst == 1 && sst == 1) {
    using V = Vec<T>;
    V vacc[kSub<T>] = {};
    for (; c + kLanes <= len; c += kLanes)
      for (int k = 0; k < kSub<T>; ++k) {
        const int64_t o = c + k * kW<T>;
        vacc[k] = lanes::fma(lanes::load<V>(g + o), lanes::load<V>(s + o), vacc[k]);
      }
    spill<T>(vacc, acc);
  }
#endif
  for (; c + kLanes <= len; c += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = lanes::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
  for (int j = 0; c + j < len; ++j) acc[j] = lanes::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
  return tree_sum(acc);
}

}  // namespace

template <class T>
void gumbel_rows(T* out, const RowSpec& o, PhiloxKey key, uint64_t first_row) {
  for_rows(o.nrows, threads_for(o.nrows, o.len), [&](int64_t r, int) {
    ChunkBuffers<T> buf;
    T* row = out + o.offset(r);
    for (int64_t c0 = 0; c0 < o.len; c0 += kChunk) {
      const int64_t n = std::min(kChunk, o.len - c0);
      noise_chunk(key, first_row + static_cast<uint64_t>(r), c0, n, buf.words, buf.g);
      if (o.step == 1)
        std::memcpy(row + c0, buf.g, static_cast<size_t>(n) * sizeof(T));
      else
        for (int64_t i = 0; i < n; ++i) row[(c0 + i) * o.step] = buf.g[i];
    }
  });
}

template <class T>
void forward_rows(const T* x, const RowSpec& xs, T* y, const RowSpec& ys, T* y_soft,
                  const RowSpec& ss, T tau, bool hard, PhiloxKey key, uint64_t first_row) {
  const int64_t len = xs.len;
  const T inv_tau = T(1) / tau;
  // Where the soft sample goes (null: hard without return_soft, no soft sample).
  T* soft = hard ? y_soft : y;
  const RowSpec& soft_spec = hard ? ss : ys;
  // A strided soft destination is staged in a row buffer per thread, allocated here,
  // before any output is written, so that a failed allocation leaves `out` untouched.
  const bool staged = soft != nullptr && soft_spec.step != 1;
  const int nthreads = threads_for(xs.nrows, len);
  std::vector<T> scratch;
  if (staged) scratch.resize(static_cast<size_t>(nthreads) * static_cast<size_t>(len));

  for_rows(xs.nrows, nthreads, [&](int64_t r, int tid) {
    const T* xr = x + xs.offset(r);
    const uint64_t q = first_row + static_cast<uint64_t>(r);
    T* soft_row = soft ? soft + soft_spec.offset(r) : nullptr;
    T* v = soft ? (staged ? scratch.data() + static_cast<int64_t>(tid) * len : soft_row)
                : nullptr;
    const RowStats<T> st = noisy_logits(xr, xs.step, len, key, q, v);
    if (soft) {
      if (st.defined())
        softmax_from_noisy(v, len, st.max, inv_tau, soft_row, soft_spec.step);
      else
        fill_nan(soft_row, soft_spec.step, len);
    }
    if (hard) {
      T* yr = y + ys.offset(r);
      if (st.defined()) {
        for (int64_t c = 0; c < len; ++c) yr[c * ys.step] = T(0);
        yr[st.argmax * ys.step] = T(1);
      } else {
        fill_nan(yr, ys.step, len);
      }
    }
  });
}

template <class T>
void backward_rows(const T* grad_y, const RowSpec& gs, const T* y_soft, const RowSpec& ss,
                   T* out, const RowSpec& os, T tau) {
  const int64_t len = gs.len;
  const T inv_tau = T(1) / tau;
  for_rows(gs.nrows, threads_for(gs.nrows, len), [&](int64_t r, int) {
    const T* g = grad_y + gs.offset(r);
    const T* s = y_soft + ss.offset(r);
    T* o = out + os.offset(r);
    const int64_t gst = gs.step, sst = ss.step, ost = os.step;
    const T dot = row_dot(g, gst, s, sst, len);
    // Element c is read before it is written, so out may be grad_y or y_soft itself.
    int64_t i = 0;
#ifdef GS_HAVE_VECTOR_EXT
    if (gst == 1 && sst == 1 && ost == 1) {
      using V = Vec<T>;
      for (; i + kW<T> <= len; i += kW<T>)
        lanes::store(o + i, (lanes::load<V>(s + i) * (lanes::load<V>(g + i) - dot)) * inv_tau);
    }
#endif
    for (; i < len; ++i) o[i * ost] = (s[i * sst] * (g[i * gst] - dot)) * inv_tau;
  });
}

void fill_table(KernelTable& t) {
  t.gumbel_f32 = &gumbel_rows<float>;
  t.gumbel_f64 = &gumbel_rows<double>;
  t.forward_f32 = &forward_rows<float>;
  t.forward_f64 = &forward_rows<double>;
  t.backward_f32 = &backward_rows<float>;
  t.backward_f64 = &backward_rows<double>;
}

}  // namespace GS_TARGET
}  // namespace gumbel_softmax
