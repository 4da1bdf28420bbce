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

// One chunk of noise: g[i] for elements c0 .. c0 + n - 1 of absolute row q.
template <class T>
void noise_chunk(PhiloxKey key, uint64_t q, int64_t c0, int64_t n, uint32_t* words, T* g) {
  constexpr int wpe = NoiseBits<T>::words_per_element;
  philox::row_words(key, q, static_cast<uint64_t>(c0) * wpe, n * wpe, words);
  for (int64_t i = 0; i < n; ++i) g[i] = bits_to_gumbel<T>(NoiseBits<T>::load(words, i));
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

// Pass 1: v = x + g.  Writes v to v_out (contiguous) when it is non-null.
template <class T>
RowStats<T> noisy_logits(const T* x, int64_t step, int64_t len, PhiloxKey key, uint64_t q,
                         T* v_out) {
  uint32_t words[kChunk * NoiseBits<T>::words_per_element];
  T g[kChunk];
  T local[kChunk];
  RowStats<T> st;
  for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
    const int64_t n = std::min(kChunk, len - c0);
    noise_chunk(key, q, c0, n, words, g);
    T* v = v_out ? v_out + c0 : local;
    for (int64_t i = 0; i < n; ++i) v[i] = x[(c0 + i) * step] + g[i];
    for (int64_t i = 0; i < n; ++i) {
      st.nan = st.nan || (v[i] != v[i]);
      if (v[i] > st.max) {  // strict: ties keep the lowest index
        st.max = v[i];
        st.argmax = c0 + i;
      }
    }
  }
  return st;
}

// Passes 2 and 3 of the soft sample, in place on v (contiguous): e = exp((v - max) /
// tau) with its sum, then y = e / sum written to y (y may be v itself, step 1).
template <class T>
void softmax_from_noisy(T* v, int64_t len, T max, T inv_tau, T* y, int64_t ystep) {
  T acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= len; c += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T e = vmath::exp((v[c + j] - max) * inv_tau);
      v[c + j] = e;
      acc[j] = acc[j] + e;
    }
  for (int j = 0; c + j < len; ++j) {
    const T e = vmath::exp((v[c + j] - max) * inv_tau);
    v[c + j] = e;
    acc[j] = acc[j] + e;
  }
  const T inv_sum = T(1) / tree_sum(acc);
  for (int64_t i = 0; i < len; ++i) y[i * ystep] = v[i] * inv_sum;
}

}  // namespace

template <class T>
void gumbel_rows(T* out, const RowSpec& o, PhiloxKey key, uint64_t first_row) {
  for_rows(o.nrows, threads_for(o.nrows, o.len), [&](int64_t r, int) {
    uint32_t words[kChunk * NoiseBits<T>::words_per_element];
    T g[kChunk];
    T* row = out + o.offset(r);
    for (int64_t c0 = 0; c0 < o.len; c0 += kChunk) {
      const int64_t n = std::min(kChunk, o.len - c0);
      noise_chunk(key, first_row + static_cast<uint64_t>(r), c0, n, words, g);
      for (int64_t i = 0; i < n; ++i) row[(c0 + i) * o.step] = g[i];
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
    // dot = sum(grad_y * y_soft), same interleaved order as the forward sums
    T acc[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= len; c += kLanes)
      for (int j = 0; j < kLanes; ++j)
        acc[j] = vmath::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
    for (int j = 0; c + j < len; ++j)
      acc[j] = vmath::fma(g[(c + j) * gst], s[(c + j) * sst], acc[j]);
    const T dot = tree_sum(acc);
    // Element c is read before it is written, so out may be grad_y or y_soft itself.
    for (int64_t i = 0; i < len; ++i) o[i * ost] = (s[i * sst] * (g[i * gst] - dot)) * inv_tau;
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
