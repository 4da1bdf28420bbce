// Error sweep of the kernels' math primitives: every float32 input of each domain (and
// dense float64 sets) against a wider reference, on every SIMD target at once.
// Not part of the package: scripts/ulp_sweep.py builds and runs it (read its docstring).
//
// One file, two roles:
//   -DGS_TARGET=<name> (with that target's flags, as CMake compiles the kernels): the
//     primitives of csrc/kernels/simd/ on the target's lanes, as ulp_eval_<T>();
//   without GS_TARGET: the driver, linked with one object per target.  It walks the
//   inputs in chunks over threads, evaluates every target on each chunk, compares the
//   targets bit for bit, and measures the error of each against glibc's double (float32
//   lanes) or x87 long double (float64 lanes) functions.
//
// Output: one JSON object on stdout.  `--eval TARGET DTYPE FN` instead reads raw inputs
// on stdin and writes the raw outputs (the Python side compares them with the extension).
#include <cstdint>
#include <cstring>

enum Fn { kLog = 0, kExp, kLog1p, kGumbel, kExponential, kLogistic, kFnCount };

#ifdef GS_TARGET
// ----- the primitives on one target's lanes -------------------------------------------
#include "simd/gumbel.hpp"
#include "simd/vmath.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {

template <class T>
struct LanesOf {
  using V = T;
};
#ifdef GS_HAVE_VECTOR_EXT
template <>
struct LanesOf<float> {
  using V = lanes::VF32;
};
template <>
struct LanesOf<double> {
  using V = lanes::VF64;
};
#endif

template <class V>
GS_INLINE V one(int fn, V x) {
  using lanes::as_bits;
  switch (fn) {
    case kLog:
      return vmath::log(x);
    case kExp:
      return vmath::exp(x);
    case kLog1p:
      return vmath::log1p_reduced(x);
    case kGumbel:
      return bits_to_gumbel<V>(as_bits(x));
    case kExponential:
      return bits_to_exponential<V>(as_bits(x));
    default:
      return bits_to_logistic<V>(as_bits(x));
  }
}

// The input travels as raw bits (the noise maps read them as words).
template <class T, class Bits>
void eval(int fn, const Bits* in, T* out, int64_t n) {
  using V = typename LanesOf<T>::V;
  constexpr int W = static_cast<int>(sizeof(V) / sizeof(T));
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    V x;
    std::memcpy(&x, in + i, sizeof x);
    const V y = one(fn, x);
    std::memcpy(out + i, &y, sizeof y);
  }
  for (; i < n; ++i) {
    T x;
    std::memcpy(&x, in + i, sizeof x);
    out[i] = one(fn, x);
  }
}

void ulp_eval_f32(int fn, const uint32_t* in, float* out, int64_t n) { eval(fn, in, out, n); }
void ulp_eval_f64(int fn, const uint64_t* in, double* out, int64_t n) { eval(fn, in, out, n); }

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#else
// ----- the driver ----------------------------------------------------------------------
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#define GS_DECLARE(t)                                                    \
  namespace gumbel_softmax {                                             \
  namespace t {                                                          \
  void ulp_eval_f32(int fn, const uint32_t* in, float* out, int64_t n);  \
  void ulp_eval_f64(int fn, const uint64_t* in, double* out, int64_t n); \
  }                                                                      \
  }
GS_DECLARE(baseline)
#ifdef ULP_HAVE_AVX2
GS_DECLARE(avx2)
#endif
#ifdef ULP_HAVE_AVX512
GS_DECLARE(avx512)
#endif

namespace {

using F32Eval = void (*)(int, const uint32_t*, float*, int64_t);
using F64Eval = void (*)(int, const uint64_t*, double*, int64_t);
struct Target {
  const char* name;
  F32Eval f32;
  F64Eval f64;
};

std::vector<Target> all_targets() {
  namespace g = gumbel_softmax;
  std::vector<Target> t{{"baseline", g::baseline::ulp_eval_f32, g::baseline::ulp_eval_f64}};
  __builtin_cpu_init();
#ifdef ULP_HAVE_AVX2
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi2"))
    t.push_back({"avx2", g::avx2::ulp_eval_f32, g::avx2::ulp_eval_f64});
#endif
#ifdef ULP_HAVE_AVX512
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    t.push_back({"avx512", g::avx512::ulp_eval_f32, g::avx512::ulp_eval_f64});
#endif
  return t;
}

const char* const kFnName[kFnCount] = {
    "log", "exp", "log1p_reduced", "bits_to_gumbel", "bits_to_exponential", "bits_to_logistic"};

// ----- references ----------------------------------------------------------------------
// float32 lanes: glibc's double functions (error below 1 double ulp, i.e. 2^-29 float32
// ulp), long double where a noise value is small enough for cancellation to matter.
// float64 lanes: x87 long double (64-bit significand: 2^-11 float64 ulp).
using LD = long double;

// t = RN_T((m + 1/2) 2^-n) and the top bit, exactly as docs/contract.md defines them.
inline void t_of_bits(uint32_t b, float& t, bool& upper) {
  upper = (b >> 31) != 0;
  t = static_cast<float>((static_cast<double>(b & 0x7fffffffu) + 0.5) * 0x1p-32);
}
inline void t_of_bits(uint64_t b, double& t, bool& upper) {
  upper = (b >> 63) != 0;
  t = static_cast<double>((static_cast<LD>(b & 0x7fffffffffffffffull) + 0.5L) * 0x1p-64L);
}

template <class R>
R noise_ref(int fn, R t, bool upper) {
  using std::log;
  using std::log1p;
  switch (fn) {
    case kExponential:
      return upper ? -log1p(-t) : -log(t);
    case kGumbel:
      return -log(upper ? -log1p(-t) : -log(t));
    default: {
      const R d = log(t) - log1p(-t);
      return upper ? -d : d;
    }
  }
}

double ref_f32(int fn, uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, 4);
  switch (fn) {
    case kLog:
      return std::log(static_cast<double>(x));
    case kExp:
      // e^-104 < 2^-150 and e^89 > 2^128: the correctly rounded result is +0 / +inf
      if (x <= -104.0f) return 0.0;
      if (x >= 89.0f) return INFINITY;
      return std::exp(static_cast<double>(x));
    case kLog1p:
      return std::log1p(static_cast<double>(x));
    default: {
      float t;
      bool upper;
      t_of_bits(bits, t, upper);
      const double r = noise_ref<double>(fn, t, upper);
      // near 0 (g at E ~ 1, L at t ~ 1/2) the double reference loses relative accuracy
      if (std::fabs(r) < 0.0625) return static_cast<double>(noise_ref<LD>(fn, t, upper));
      return r;
    }
  }
}

LD ref_f64(int fn, uint64_t bits) {
  double x;
  std::memcpy(&x, &bits, 8);
  switch (fn) {
    case kLog:
      return std::log(static_cast<LD>(x));
    case kExp:
      return std::exp(static_cast<LD>(x));
    case kLog1p:
      return std::log1p(static_cast<LD>(x));
    default: {
      double t;
      bool upper;
      t_of_bits(bits, t, upper);
      return noise_ref<LD>(fn, static_cast<LD>(t), upper);
    }
  }
}

// ulp(r): the spacing of the dtype's numbers in the binade of the exact value r
// (2^(floor(log2 |r|) - p + 1), and the subnormal spacing below the normal range).
template <class T>
LD ulp_of(LD r) {
  constexpr int p = std::numeric_limits<T>::digits;
  constexpr int emin = std::numeric_limits<T>::min_exponent - 1;  // of the smallest normal
  const LD a = std::fabs(r);
  if (!(a >= std::numeric_limits<T>::min())) return std::ldexp(1.0L, emin - p + 1);
  return std::ldexp(1.0L, std::ilogb(a) - p + 1);
}

// ----- statistics ---------------------------------------------------------------------
struct Worst {
  double err = -1;
  uint64_t in = 0;
  double got = 0, ref = 0;
  void take(double e, uint64_t x, double g, double r) {
    if (e > err || (e == err && x < in)) *this = Worst{e, x, g, r};
  }
  void merge(const Worst& o) {
    if (o.err >= 0) take(o.err, o.in, o.got, o.ref);
  }
};

struct Stats {
  uint64_t count = 0, above_half = 0, above_one = 0, bad = 0, mismatches = 0;
  uint64_t first_mismatch = 0;
  bool has_mismatch = false;
  Worst ulp, eps;  // eps: |got - ref| / (eps (1 + |ref|)), the noise's contract metric
  void merge(const Stats& o) {
    count += o.count;
    above_half += o.above_half;
    above_one += o.above_one;
    bad += o.bad;
    mismatches += o.mismatches;
    if (o.has_mismatch && (!has_mismatch || o.first_mismatch < first_mismatch)) {
      first_mismatch = o.first_mismatch;
      has_mismatch = true;
    }
    ulp.merge(o.ulp);
    eps.merge(o.eps);
  }
};

// Error of got against the exact value r (type R: double for float32, long double for
// float64), in ulps of T; inf for a wrong special value (inf, NaN, overflow).
template <class T, class R>
double ulp_error(T got, R r) {
  const T rounded = static_cast<T>(r);  // the correctly rounded result (up to ties)
  if (std::isinf(rounded) || !std::isfinite(got))
    return (got == rounded) ? 0.0 : static_cast<double>(INFINITY);
  return static_cast<double>(std::fabs(static_cast<R>(got) - r) / ulp_of<T>(r));
}

// ulp_of<float> on a double, with bit operations (the float32 sweep's hot path).
template <>
double ulp_error<float, double>(float got, double r) {
  const float rounded = static_cast<float>(r);
  if (std::isinf(rounded) || !std::isfinite(got))
    return (got == rounded) ? 0.0 : static_cast<double>(INFINITY);
  uint64_t b;
  std::memcpy(&b, &r, 8);
  const int e = std::max(static_cast<int>((b >> 52) & 0x7ff) - 1023, -126);  // floor(log2|r|)
  const uint64_t ub = static_cast<uint64_t>(e - 23 + 1023) << 52;
  double ulp;
  std::memcpy(&ulp, &ub, 8);
  return std::fabs(static_cast<double>(got) - r) / ulp;
}

// ----- the input sets -------------------------------------------------------------------
// An input set is a function from an index in [0, size) to the input's bits.
// (Consecutive bit patterns take a fast path: `at` empty, input = base + index.)
struct InputSet {
  std::string name;
  uint64_t size;
  std::function<uint64_t(uint64_t)> at;
  uint64_t base = 0, step = 1;
};

// Consecutive bit patterns [lo, hi] (float32: every float in a range).
uint64_t g_stride = 1;  // --stride
InputSet bit_range(std::string name, uint64_t lo, uint64_t hi) {
  return {std::move(name), (hi - lo) / g_stride + 1, nullptr, lo, g_stride};
}

inline uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline uint64_t dbits(double x) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  return b;
}
inline uint32_t fbits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
// Uniform in [lo, hi] by value (a fixed seed per set).
InputSet uniform(std::string name, uint64_t n, double lo, double hi, uint64_t seed) {
  return {std::move(name), n, [=](uint64_t i) {
            const double u =
                static_cast<double>(splitmix(seed * 0x100000001ull + i) >> 11) * 0x1p-53;
            return dbits(lo + (hi - lo) * u);
          }};
}
// Random bit patterns in [lo, hi] (log-uniform by magnitude within a sign).
InputSet random_bits(std::string name, uint64_t n, uint64_t lo, uint64_t hi, uint64_t seed) {
  const uint64_t span = hi - lo + 1;  // 0: all 2^64 patterns
  return {std::move(name), n, [=](uint64_t i) {
            const uint64_t r = splitmix(seed * 0x100000001ull + i);
            return lo + (span ? r % span : r);
          }};
}
// Doubles in the order of their values as integers (-0 and +0 adjacent), and back.
inline int64_t ordered(double x) {
  const uint64_t b = dbits(x);
  return (b >> 63) ? -static_cast<int64_t>(b & 0x7fffffffffffffffull) - 1 : static_cast<int64_t>(b);
}
inline uint64_t unordered(int64_t o) {
  return o < 0 ? (static_cast<uint64_t>(-(o + 1)) | 0x8000000000000000ull)
               : static_cast<uint64_t>(o);
}
// 2w consecutive doubles around each of the centres (w below, the centre and w - 1 above).
InputSet around(std::string name, std::vector<double> centres, uint64_t w) {
  const uint64_t n = centres.size() * 2 * w;
  return {std::move(name), n, [centres = std::move(centres), w](uint64_t i) {
            const int64_t k = static_cast<int64_t>(i % (2 * w)) - static_cast<int64_t>(w);
            return unordered(ordered(centres[i / (2 * w)]) + k);
          }};
}
// 2w consecutive 64-bit words around each of the centre words.
InputSet around_words(std::string name, std::vector<uint64_t> centres, uint64_t w) {
  const uint64_t n = centres.size() * 2 * w;
  return {std::move(name), n, [centres = std::move(centres), w](uint64_t i) {
            return centres[i / (2 * w)] + (i % (2 * w)) - w;
          }};
}

// ----- the sweep ------------------------------------------------------------------------
struct Options {
  int threads = 2;
  uint64_t f64_n = uint64_t(1) << 24;
  std::vector<int> f32_fns, f64_fns;
};

constexpr int64_t kChunk = 1 << 14;

template <class T>
struct Dt;
template <>
struct Dt<float> {
  using Bits = uint32_t;
  using R = double;
  static constexpr const char* name = "float32";
  static void eval(const Target& t, int fn, const Bits* in, float* out, int64_t n) {
    t.f32(fn, in, out, n);
  }
  static double ref(int fn, Bits b) { return ref_f32(fn, b); }
};
template <>
struct Dt<double> {
  using Bits = uint64_t;
  using R = LD;
  static constexpr const char* name = "float64";
  static void eval(const Target& t, int fn, const Bits* in, double* out, int64_t n) {
    t.f64(fn, in, out, n);
  }
  static LD ref(int fn, Bits b) { return ref_f64(fn, b); }
};

template <class R>
std::vector<R>& ref_buffer(int64_t n) {
  thread_local std::vector<R> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf;
}

template <class T>
void record(Stats& s, int fn, typename Dt<T>::Bits x, T got, typename Dt<T>::R r, double e) {
  using R = typename Dt<T>::R;
  ++s.count;
  s.above_half += e > 0.5;
  s.above_one += e > 1.0;
  s.bad += std::isinf(e);
  if (e >= s.ulp.err) s.ulp.take(e, x, static_cast<double>(got), static_cast<double>(r));
  if (fn >= kGumbel && std::isfinite(got)) {
    constexpr R eps = std::numeric_limits<T>::epsilon();
    const double ee =
        static_cast<double>(std::fabs(static_cast<R>(got) - r) / (eps * (1 + std::fabs(r))));
    if (ee >= s.eps.err) s.eps.take(ee, x, static_cast<double>(got), static_cast<double>(r));
  }
}

// One chunk on every target: the reference and the error once per input (the targets
// should agree bit for bit); a target whose outputs differ from the first's anywhere in
// the chunk gets the chunk measured on its own outputs.
template <class T>
void sweep_chunk(int fn, const std::vector<Target>& targets, const typename Dt<T>::Bits* in,
                 int64_t n, std::vector<std::vector<T> >& out, std::vector<Stats>& st) {
  using Bits = typename Dt<T>::Bits;
  using R = typename Dt<T>::R;
  const size_t nt = targets.size();
  for (size_t k = 0; k < nt; ++k) Dt<T>::eval(targets[k], fn, in, out[k].data(), n);
  std::vector<R>& ref = ref_buffer<R>(n);
  for (int64_t i = 0; i < n; ++i) ref[i] = Dt<T>::ref(fn, in[i]);
  for (size_t k = 0; k < nt; ++k) {
    if (k > 0 && std::memcmp(out[k].data(), out[0].data(), n * sizeof(T)) == 0) continue;
    Stats c;
    for (int64_t i = 0; i < n; ++i)
      record<T>(c, fn, in[i], out[k][i], ref[i], ulp_error<T, R>(out[k][i], ref[i]));
    if (k > 0) {
      for (int64_t i = 0; i < n; ++i) {
        Bits a, b;
        std::memcpy(&a, &out[k][i], sizeof a);
        std::memcpy(&b, &out[0][i], sizeof b);
        if (a != b) {
          if (!c.has_mismatch || in[i] < c.first_mismatch) c.first_mismatch = in[i];
          c.has_mismatch = true;
          ++c.mismatches;
        }
      }
    }
    st[k].merge(c);
    if (k == 0)  // the targets that agree with the first on the whole chunk
      for (size_t j = 1; j < nt; ++j)
        if (std::memcmp(out[j].data(), out[0].data(), n * sizeof(T)) == 0) st[j].merge(c);
  }
}

template <class T>
std::vector<Stats> sweep(int fn, const std::vector<Target>& targets,
                         const std::vector<InputSet>& sets, int threads) {
  using Bits = typename Dt<T>::Bits;
  std::vector<uint64_t> start{0};
  for (const auto& s : sets) start.push_back(start.back() + s.size);
  const uint64_t total = start.back();
  const uint64_t nchunks = (total + kChunk - 1) / kChunk;
  std::atomic<uint64_t> next{0};
  std::vector<std::vector<Stats> > per(threads, std::vector<Stats>(targets.size()));
  auto work = [&](int tid) {
    std::vector<Bits> in(kChunk);
    std::vector<std::vector<T> > out(targets.size(), std::vector<T>(kChunk));
    size_t set = 0;
    for (uint64_t c; (c = next.fetch_add(1)) < nchunks;) {
      const uint64_t lo = c * kChunk, hi = std::min(total, lo + kChunk);
      while (!(start[set] <= lo && lo < start[set + 1])) set = (lo < start[set]) ? 0 : set + 1;
      size_t s = set;
      for (uint64_t g = lo; g < hi; ++g) {
        while (g >= start[s + 1]) ++s;
        const InputSet& is = sets[s];
        in[g - lo] =
            static_cast<Bits>(is.at ? is.at(g - start[s]) : is.base + (g - start[s]) * is.step);
      }
      sweep_chunk<T>(fn, targets, in.data(), static_cast<int64_t>(hi - lo), out, per[tid]);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  std::vector<Stats> st(targets.size());
  for (const auto& p : per)
    for (size_t k = 0; k < st.size(); ++k) st[k].merge(p[k]);
  return st;
}

// float32: every input of the domain.
std::vector<InputSet> f32_sets(int fn, std::string& domain) {
  switch (fn) {
    case kLog:
      domain = "every positive normal float";
      return {bit_range("positive normals", 0x00800000u, 0x7f7fffffu)};
    case kExp:
      domain = "every finite float";
      return {bit_range("+0 .. max", 0x00000000u, 0x7f7fffffu),
              bit_range("-0 .. -max", 0x80000000u, 0xff7fffffu)};
    case kLog1p: {
      // what the kernels pass: log_reduce's f = from_bits(mantissa + bits(RN(sqrt 1/2))) - 1,
      // in [RN(sqrt 1/2) - 1, 2 RN(sqrt 1/2) - 1), and the noise's f = -t down to
      // -RN(1 - sqrt 1/2) and 1 - 2t (in [0, sqrt 2 - 1]); the union, every float in it.
      const float sqrt_half = 0.70710678118654752f;
      const float lo = std::min(sqrt_half - 1.0f, -0.29289321881345247f);
      float hi;
      {
        const uint32_t top = fbits(sqrt_half) + 0x007fffffu;
        float x;
        std::memcpy(&x, &top, 4);
        hi = std::max(x - 1.0f, static_cast<float>(std::sqrt(2.0) - 1.0));
      }
      char buf[160];
      std::snprintf(buf, sizeof buf, "every float in [%.9g, %.9g]", lo, hi);
      domain = buf;
      return {bit_range("[lo, -0]", 0x80000000u, fbits(lo)),
              bit_range("[+0, hi]", 0x00000000u, fbits(hi))};
    }
    default:
      domain = "every 32-bit word";
      return {bit_range("all words", 0, 0xffffffffu)};
  }
}

// float64: dense sets (random, uniform, and consecutive inputs around every boundary).
std::vector<InputSet> f64_sets(int fn, uint64_t n, std::string& domain) {
  std::vector<double> c;
  switch (fn) {
    case kLog: {
      domain = "random normals, [0.5, 2] dense, around 1 and every 2^k sqrt(1/2)";
      for (int k = -1021; k <= 1024; ++k) c.push_back(std::ldexp(0.70710678118654752, k));
      return {random_bits("random normals", n, 0x0010000000000000ull, 0x7fefffffffffffffull, 1),
              uniform("[0.5, 2]", n, 0.5, 2.0, 2), around("around 1", {1.0}, n / 8),
              around("around 2^k sqrt(1/2)", c, 256)};
    }
    case kExp: {
      domain = "[-746, 710] and [-1, 1] dense, around 0 and every (k + 1/2) ln 2";
      for (int k = -1077; k <= 1025; ++k) c.push_back((k + 0.5) * 0.69314718055994531);
      return {uniform("[-746, 710]", n, -746.0, 710.0, 3), uniform("[-1, 1]", n, -1.0, 1.0, 4),
              uniform("subnormal results", n / 4, -745.2, -708.3, 5),
              around("around 0", {0.0}, n / 8), around("around (k + 1/2) ln 2", c, 128)};
    }
    case kLog1p: {
      const double lo = 0.70710678118654752 - 1.0, hi = 1.4142135623730951 - 1.0;
      domain = "[sqrt(1/2) - 1, sqrt(2) - 1]: uniform, random bits, around 0 and the ends";
      return {uniform("uniform", n, lo, hi, 6),
              random_bits("random bits > 0", n / 2, 0, dbits(hi), 7),
              random_bits("random bits < 0", n / 2, 0x8000000000000000ull, dbits(lo), 8),
              around("around 0 and the ends", {lo, hi, 0.0}, n / 16)};
    }
    default: {
      domain = "random words, the ends of both tails, around the split and every 2^j of m";
      std::vector<uint64_t> w{0, 0x7fffffffffffffffull, 0x8000000000000000ull,
                              0xffffffffffffffffull};
      // the split t = 1 - sqrt(1/2) of the s = 1 case, in m
      const uint64_t m_split = static_cast<uint64_t>(0.29289321881345247 * 0x1p64);
      w.push_back(0x8000000000000000ull | m_split);
      for (int j = 1; j < 63; ++j) {
        w.push_back(uint64_t(1) << j);
        w.push_back(0x8000000000000000ull | (uint64_t(1) << j));
      }
      return {random_bits("random words", n, 0, 0xffffffffffffffffull, 9),
              around_words("ends, split, powers of two", w, 4096)};
    }
  }
}

void print_worst(const char* key, const Worst& w, int bits) {
  std::printf("\"%s\": {\"err\": %.17g, \"input_bits\": \"0x%0*" PRIx64
              "\", \"got\": %.17g, \"ref\": %.17g}",
              key, w.err, bits / 4, w.in, w.got, w.ref);
}

template <class T>
void run_and_print(int fn, const std::vector<Target>& targets, const std::vector<InputSet>& sets,
                   const std::string& domain, int threads, bool& first) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = sweep<T>(fn, targets, sets, threads);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int bits = 8 * static_cast<int>(sizeof(T));
  for (size_t k = 0; k < targets.size(); ++k) {
    const Stats& s = st[k];
    std::printf(
        "%s\n  {\"function\": \"%s\", \"dtype\": \"%s\", \"target\": \"%s\", "
        "\"domain\": \"%s\", \"count\": %" PRIu64 ", \"seconds\": %.2f, ",
        first ? "" : ",", kFnName[fn], Dt<T>::name, targets[k].name, domain.c_str(), s.count, sec);
    first = false;
    std::printf("\"above_half_ulp\": %" PRIu64 ", \"above_one_ulp\": %" PRIu64
                ", \"wrong_special\": %" PRIu64 ", \"mismatches_vs_%s\": %" PRIu64 ", ",
                s.above_half, s.above_one, s.bad, targets[0].name, s.mismatches);
    if (s.has_mismatch)
      std::printf("\"first_mismatch_bits\": \"0x%0*" PRIx64 "\", ", bits / 4, s.first_mismatch);
    print_worst("max_ulp", s.ulp, bits);
    if (s.eps.err >= 0) {
      std::printf(", ");
      print_worst("max_eps_1_plus_abs", s.eps, bits);
    }
    std::printf("}");
  }
  std::fflush(stdout);
}

int fn_of(const std::string& s) {
  for (int f = 0; f < kFnCount; ++f)
    if (s == kFnName[f]) return f;
  std::fprintf(stderr, "unknown function %s\n", s.c_str());
  std::exit(2);
}

std::vector<int> fn_list(const std::string& s) {
  std::vector<int> out;
  if (s == "none") return out;
  size_t p = 0;
  while (p <= s.size()) {
    const size_t q = std::min(s.find(',', p), s.size());
    out.push_back(fn_of(s.substr(p, q - p)));
    p = q + 1;
  }
  return out;
}

// --eval TARGET DTYPE FN: raw inputs on stdin -> raw outputs on stdout.
int eval_mode(const std::vector<Target>& targets, const std::string& tname,
              const std::string& dtype, int fn) {
  const Target* t = nullptr;
  for (const auto& x : targets)
    if (tname == x.name) t = &x;
  if (!t) {
    std::fprintf(stderr, "target %s not available\n", tname.c_str());
    return 2;
  }
  std::vector<unsigned char> raw;
  unsigned char buf[1 << 16];
  for (size_t k; (k = std::fread(buf, 1, sizeof buf, stdin)) > 0;)
    raw.insert(raw.end(), buf, buf + k);
  if (dtype == "float32") {
    std::vector<uint32_t> in(raw.size() / 4);
    std::memcpy(in.data(), raw.data(), in.size() * 4);
    std::vector<float> out(in.size());
    t->f32(fn, in.data(), out.data(), static_cast<int64_t>(in.size()));
    std::fwrite(out.data(), 4, out.size(), stdout);
  } else {
    std::vector<uint64_t> in(raw.size() / 8);
    std::memcpy(in.data(), raw.data(), in.size() * 8);
    std::vector<double> out(in.size());
    t->f64(fn, in.data(), out.data(), static_cast<int64_t>(in.size()));
    std::fwrite(out.data(), 8, out.size(), stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto targets = all_targets();
  Options o;
  o.f32_fns = {kLog, kExp, kLog1p, kExponential, kGumbel, kLogistic};
  o.f64_fns = o.f32_fns;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") {
      o.threads = std::max(1, std::atoi(val().c_str()));
    } else if (a == "--targets") {  // a comma-separated subset, in the order given
      const std::string want = "," + val() + ",";
      std::vector<Target> keep;
      for (const auto& t : targets)
        if (want.find(std::string(",") + t.name + ",") != std::string::npos) keep.push_back(t);
      targets = keep;
      if (targets.empty()) {
        std::fprintf(stderr, "none of the targets %s is available\n", want.c_str());
        return 2;
      }
    } else if (a == "--stride") {
      g_stride = std::max<uint64_t>(1, std::strtoull(val().c_str(), nullptr, 0));
    } else if (a == "--f64-n") {
      o.f64_n = std::strtoull(val().c_str(), nullptr, 0);
    } else if (a == "--f32") {
      o.f32_fns = fn_list(val());
    } else if (a == "--f64") {
      o.f64_fns = fn_list(val());
    } else if (a == "--eval" && i + 3 < argc) {
      return eval_mode(targets, argv[i + 1], argv[i + 2], fn_of(argv[i + 3]));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::printf("{\"targets\": [");
  for (size_t k = 0; k < targets.size(); ++k)
    std::printf("%s\"%s\"", k ? ", " : "", targets[k].name);
  std::printf("], \"threads\": %d, \"f64_n\": %" PRIu64 ", \"stride\": %" PRIu64 ", \"results\": [",
              o.threads, o.f64_n, g_stride);
  bool first = true;
  for (int fn : o.f32_fns) {
    std::string domain;
    const auto sets = f32_sets(fn, domain);
    run_and_print<float>(fn, targets, sets, domain, o.threads, first);
  }
  for (int fn : o.f64_fns) {
    std::string domain;
    const auto sets = f64_sets(fn, o.f64_n, domain);
    run_and_print<double>(fn, targets, sets, domain, o.threads, first);
  }
  std::printf("\n]}\n");
  return 0;
}
#endif  // GS_TARGET
