// Per-target row machinery, part 5: tiles of strided rows.
#pragma once

#include "rows/common.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

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
  for (int64_t i = 0; i < g; ++i) off[i] = row_offset(sp, r0 + i);
  for (int64_t k = 0; k < sp.len; ++k)
    for (int64_t i = 0; i < g; ++i) tile[i * sp.len + k] = base[off[i] + k * sp.step];
}

// gather_tile with a mask: elements whose mask byte is 0 become -inf.
template <class T>
void gather_tile_masked(const T* base, const RowSpec& sp, const uint8_t* mask, const RowSpec& ms,
                        int64_t r0, int64_t g, T* tile) {
  int64_t off[kTileRows], moff[kTileRows];
  for (int64_t i = 0; i < g; ++i) off[i] = row_offset(sp, r0 + i), moff[i] = row_offset(ms, r0 + i);
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < sp.len; ++k)
    for (int64_t i = 0; i < g; ++i)
      tile[i * sp.len + k] = mask[moff[i] + k * ms.step] ? base[off[i] + k * sp.step] : ninf;
}

#ifdef GS_HAVE_VECTOR_EXT
// The kW<T> mask bytes at p widened to the lanes of Vec<T> (one vpmovzxb* where there
// is one: GCC's generic conversion of a byte vector inserts the lanes one by one).
template <class T>
GS_INLINE lanes::Int<Vec<T>> load_mask(const uint8_t* p) {
  using I = lanes::Int<Vec<T>>;
#if defined(__AVX512F__) || defined(__AVX2__)
  // exactly kW bytes read (the mask may end there): 16, 8 or 4 of them
  __m128i b;
  if constexpr (kW<T> == 16) {
    b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  } else if constexpr (kW<T> == 8) {
    int64_t w;
    std::memcpy(&w, p, sizeof w);
    b = _mm_cvtsi64_si128(w);
  } else {
    int32_t w;
    std::memcpy(&w, p, sizeof w);
    b = _mm_cvtsi32_si128(w);
  }
#endif
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4)
    return (I)_mm512_cvtepu8_epi32(b);
  else
    return (I)_mm512_cvtepu8_epi64(b);
#elif defined(__AVX2__)
  if constexpr (sizeof(T) == 4)
    return (I)_mm256_cvtepu8_epi32(b);
  else
    return (I)_mm256_cvtepu8_epi64(b);
#else
  I m;
  for (int j = 0; j < kW<T>; ++j) m[j] = p[j];
  return m;
#endif
}
#endif

// xm[c] = x[c], or -inf where mask[c] is 0, for c < len (contiguous x, mask and xm).
template <class T>
void mask_contiguous(const T* x, const uint8_t* mask, int64_t len, T* xm) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  int64_t c = 0;
#ifdef GS_HAVE_VECTOR_EXT
  using V = Vec<T>;
  for (; c + kW<T> <= len; c += kW<T>) {
    const V xv = lanes::load<V>(x + c);
    lanes::store(xm + c, lanes::select(load_mask<T>(mask + c) != 0, xv, lanes::splat<V>(ninf)));
  }
#endif
  for (; c < len; ++c) xm[c] = mask[c] ? x[c] : ninf;
}

template <class T>
void scatter_tile(T* base, const RowSpec& sp, int64_t r0, int64_t g, const T* tile) {
  int64_t off[kTileRows];
  for (int64_t i = 0; i < g; ++i) off[i] = row_offset(sp, r0 + i);
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
  Scratch<T> scratch(static_cast<int64_t>(nthreads) * per_thread);
  for_rows(ntiles, nthreads, [&](int64_t t, int tid) {
    const int64_t r0 = t * kTileRows;
    body(r0, std::min(kTileRows, nrows - r0), scratch.data() + tid * per_thread);
  });
}

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
