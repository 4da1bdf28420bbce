// Per-target row machinery, part 6: the schedule, the one cascade that every op's call
// over rows goes through.  An op is a class deriving from Schedule that says which paths
// it has (the k* flags) and supplies the row functions of those paths:
//
//   short rows   (kShortRows, rows of <= kShortMax elements, vector extensions only):
//                short_group(r0, n): rows r0 .. r0 + n - 1, one per vector lane;
//   split rows   (kSplitRows, few long rows: split_rows(); and may_split()):
//                begin_split() once, then split_row(r) for each row in turn, which
//                spreads the row's segments over the threads (for_segments);
//   tiles        (kTiles, strided rows: strided(), see use_tiles):
//                tile(r0, g, tile): rows r0 .. r0 + g - 1 with tile_elements() of
//                scratch per thread;
//   row by row   (always): begin_rows(nthreads) once (per-thread scratch), then
//                row(r, tid) for every row, the rows spread over the threads.
//
// The first path that applies is taken.  Every path computes each row with the same
// operations in the same order, so the path changes the speed, never a bit.
#pragma once

#include "rows/common.hpp"
#include "rows/short_rows.hpp"
#include "rows/tiles.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// The defaults of an op: no short-row, split or tile path.
struct Schedule {
  static constexpr bool kShortRows = false;
  static constexpr bool kSplitRows = false;
  static constexpr bool kTiles = false;
  bool may_split() const { return true; }
  bool strided() const { return false; }
  void begin_split() {}
  void begin_rows(int) {}
};

// Runs op over nrows rows of len elements (T: the element type of the op's rows).
template <class T, class Op>
void run_schedule(Op& op, int64_t nrows, int64_t len) {
  // No element to compute: no rows, or rows of no element (the binding has taken such
  // a call's noise rows).  Nothing runs: no loop over 2**40 empty rows, no scratch
  // sized by rows that do not exist.
  if (nrows == 0 || len == 0) return;
#ifdef GS_HAVE_VECTOR_EXT
  if constexpr (Op::kShortRows) {
    if (use_short_rows<T>(len)) {
      for_groups<T>(nrows, len, [&](int64_t r0, int64_t n) { op.short_group(r0, n); });
      return;
    }
  }
#endif
  if constexpr (Op::kSplitRows) {
    if (op.may_split() && split_rows(nrows, len)) {
      op.begin_split();
      for (int64_t r = 0; r < nrows; ++r) op.split_row(r);
      return;
    }
  }
  if constexpr (Op::kTiles) {
    if (use_tiles<T>(op.strided(), len)) {
      for_tiles<T>(nrows, len, op.tile_elements(),
                   [&](int64_t r0, int64_t g, T* tile) { op.tile(r0, g, tile); });
      return;
    }
  }
  const int nthreads = threads_for(nrows, len);
  op.begin_rows(nthreads);
  for_rows(nrows, nthreads, [&](int64_t r, int tid) { op.row(r, tid); });
}

// An elementwise op (any split of a row gives the same bits): row_part(r, begin, end)
// on elements [begin, end) of row r; long rows are split into segments.
template <class Derived>
struct Elementwise : Schedule {
  static constexpr bool kSplitRows = true;
  int64_t len_;
  explicit Elementwise(int64_t len) : len_(len) {}
  void split_row(int64_t r) {
    for_segments(len_,
                 [&](int64_t, int64_t begin, int64_t end) { self().row_part(r, begin, end); });
  }
  void row(int64_t r, int) { self().row_part(r, 0, len_); }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
