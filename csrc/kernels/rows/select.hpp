// Per-target row machinery, part 7: the k largest values of a row (Gumbel top-k), for
// top_k and the k-hot of relaxed_top_k.
#pragma once

#include <algorithm>

#include "rows/common.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// k up to this keeps a sorted buffer while scanning v once (about one comparison per
// element); larger k select with nth_element and sort the first k.
constexpr int64_t kInsertK = 32;

template <class T>
struct Item {
  T v;
  int64_t i;
};

// The k best of v (a row with a defined sample: no NaN, no +inf) into o, by insertion
// into the sorted buffer items (k <= kInsertK).  Elements come in index order, so an
// equal value never displaces an earlier one.
template <class T>
void select_insert(const T* v, int64_t len, int64_t k, int64_t* o, Item<T>* items) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
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
    items[pos] = Item<T>{val, c};
  }
  for (int64_t j = 0; j < k; ++j) o[j] = items[j].v == ninf ? -1 : items[j].i;
}

// The same for k > kInsertK, with idx (len indices) as scratch.
template <class T>
void select_sort(const T* v, int64_t len, int64_t k, int64_t* o, int64_t* idx) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < len; ++c) idx[c] = c;
  auto better = [v](int64_t p, int64_t q) { return v[p] > v[q] || (v[p] == v[q] && p < q); };
  if (k < len) std::nth_element(idx, idx + k, idx + len, better);
  std::sort(idx, idx + k, better);
  for (int64_t j = 0; j < k; ++j) o[j] = v[idx[j]] == ninf ? -1 : idx[j];
}

// The indices of the k largest v of a row in decreasing order (ties: lower index first;
// -1 for slots holding -inf) into o: items (min(k, kInsertK)) and idx (len, for
// k > kInsertK) are scratch.
template <class T>
void select_top(const T* v, int64_t len, int64_t k, int64_t* o, Item<T>* items, int64_t* idx) {
  if (k <= kInsertK)
    select_insert(v, len, k, o, items);
  else
    select_sort(v, len, k, o, idx);
}

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
