// The arguments of the ops "forward" (softmax_forward.cpp) and "backward"
// (softmax_backward.cpp): types only, shared by their kernels, their bindings and the
// XLA FFI handlers of gumbel_softmax.jax (bindings/xla_ffi.cpp).
#pragma once

#include "gumbel_softmax/kernels.hpp"

namespace gumbel_softmax {

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
  // Or a key and a stream row per row (both non-null, nrows entries each): row r draws
  // the noise of row row_qs[r] of key row_keys[r] (the XLA FFI handlers: each element of
  // a vmap is its own call, with its own key, run as rows of one kernel call).
  const PhiloxKey* row_keys = nullptr;
  const uint64_t* row_qs = nullptr;
};

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
  // The memory-saving backward: with x non-null (y_soft null), y_soft is recomputed row
  // by row from the forward's inputs (x, tau, key, first_row; the soft sample, no mask)
  // in a row buffer, bit for bit the forward's, and with round_soft rounded to float16
  // (1) or bfloat16 (2) and back, as a half forward's result is.
  const T* x = nullptr;
  RowSpec xs;
  PhiloxKey key{};
  uint64_t first_row = 0;
  int round_soft = 0;
};

}  // namespace gumbel_softmax
