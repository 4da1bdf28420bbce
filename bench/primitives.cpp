// Per-primitive cost of the kernels on one core, data in L1: Philox words, bits -> Gumbel
// noise, exp, log, on the AVX2 lanes.  Not part of the package; build and run with
//   g++ -O3 -std=c++17 -mavx2 -mfma -mbmi2 -ffp-contract=off -fno-math-errno -Wno-psabi \
//       -DGS_TARGET=avx2 -Icsrc/include -Icsrc/kernels bench/primitives.cpp -o /tmp/primitives \
//       && taskset -c 1 /tmp/primitives
// (on AVX-512: -DGS_TARGET=avx512 and -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma).
#include <chrono>
#include <cstdio>
#include <vector>

#include "simd/gumbel.hpp"
#include "simd/philox.hpp"
#include "simd/vmath.hpp"

using gumbel_softmax::PhiloxKey;
using namespace gumbel_softmax::GS_TARGET;
using V = lanes::VF32;
using U = lanes::VU32;
constexpr int W = lanes::width<V>();

int main() {
  const int n = 1 << 12;  // 16 KiB of words: L1-resident
  const int reps = 20000;
  std::vector<uint32_t> words(n + 64);
  std::vector<float> g(n + W);
  const PhiloxKey key{1, 2};
  using clock = std::chrono::steady_clock;
  auto ns_per = [&](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::nano>(b - a).count() / (double(n) * reps);
  };
  const auto t0 = clock::now();
  for (int r = 0; r < reps; ++r)
    philox::row_words_lanes(key, r, 0, n / (4 * philox::kBlockLanes), words.data());
  const auto t1 = clock::now();
  for (int r = 0; r < reps; ++r)
    for (int i = 0; i < n; i += W)
      lanes::store(g.data() + i, bits_to_gumbel<V>(lanes::load_bits<U>(words.data() + i)));
  const auto t2 = clock::now();
  for (int r = 0; r < reps; ++r)
    for (int i = 0; i < n; i += W)
      lanes::store(g.data() + i, vmath::exp(lanes::load<V>(g.data() + i) - 3.0f));
  const auto t3 = clock::now();
  for (int r = 0; r < reps; ++r)
    for (int i = 0; i < n; i += W)
      lanes::store(g.data() + i, vmath::log(lanes::load<V>(g.data() + i) + 1.5f));
  const auto t4 = clock::now();
  std::printf(
      "lanes %d: philox %.3f ns/word, bits->gumbel %.3f ns/elem, exp %.3f ns/elem, "
      "log %.3f ns/elem (checksum %g)\n",
      W, ns_per(t0, t1), ns_per(t1, t2), ns_per(t2, t3), ns_per(t3, t4), g[5]);
  return 0;
}
