// Op "top_k": the k largest x + g of each row (Gumbel top-k: k samples without
// replacement).
// Layout of an op file (see csrc/README.md): its Args (types only), then its binding
// (compiled into _core with GS_BIND), else its kernels (compiled once per SIMD target).
#include "gumbel_softmax/kernels.hpp"

// ----- the op's arguments (shared by the kernels and the binding: types only) ----
namespace gumbel_softmax {

// The indices of the k largest x + g of each row in decreasing order (ties: lower index
// first) into out (nrows x k, contiguous); -1 for slots past the row's finite values and
// for rows with no defined sample.
template <class T>
struct TopKArgs {
  const T* x = nullptr;
  RowSpec xs;
  int64_t* out = nullptr;
  int64_t k = 0;
  PhiloxKey key{};
  uint64_t first_row = 0;
};

}  // namespace gumbel_softmax

#ifdef GS_BIND
// ----- the binding (compiled into the _core module) ---------------------------
#include "bindings/common.hpp"

namespace gumbel_softmax {
namespace {

template <class T>
py::object top_k_impl(const py::array& logits, int64_t k, int axis, const py::object& rng) {
  auto x = py::reinterpret_borrow<py::array_t<T>>(logits);
  TopKArgs<T> a;
  a.xs = rowspec_of(x, axis);
  if (k < 0 || k > a.xs.len) throw py::value_error("k out of range");
  std::vector<py::ssize_t> shape = batch_shape(logits, axis);
  shape.push_back(static_cast<py::ssize_t>(k));
  py::array_t<int64_t> idx(shape);
  a.x = x.data();
  a.out = idx.mutable_data();
  a.k = k;
  const Rows rows = take_rows(rng, a.xs.nrows);
  a.key = rows.key;
  a.first_row = rows.first;
  run_kernel([&] { run(a); }, &rows);
  return std::move(idx);
}

void bind(py::module_& m) {
  m.def(
      "top_k",
      [](const py::array& logits, int64_t k, int axis, const py::object& rng) {
        return is_double(logits) ? top_k_impl<double>(logits, k, axis, rng)
                                 : top_k_impl<float>(logits, k, axis, rng);
      },
      py::arg("logits"), py::arg("k"), py::arg("axis"), py::arg("rng"));
}

GS_BINDING(bind)

}  // namespace
}  // namespace gumbel_softmax

#else
// ----- the kernels (compiled once per SIMD target) ----------------------------
#include "rows/pass1.hpp"
#include "rows/schedule.hpp"
#include "rows/select.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

template <class T>
struct TopKOp : Schedule {
  static constexpr bool kShortRows = true;
  static constexpr bool kSplitRows = true;
  const TopKArgs<T>& a;
  const int64_t len, k, nitems;
  const bool big_k;
  Scratch<T> vbuf;  // per thread (split rows: one)
  Scratch<int64_t> ibuf;
  Scratch<Item<T>> items;
  Scratch<RowStats<T>> seg_st;

  explicit TopKOp(const TopKArgs<T>& args)
      : a(args),
        len(args.xs.len),
        k(args.k),
        nitems(std::min(args.k, kInsertK)),
        big_k(args.k > kInsertK) {}

  uint64_t row_q(int64_t r) const { return a.first_row + static_cast<uint64_t>(r); }
  void finish(int64_t r, const RowStats<T>& st, const T* v, Item<T>* it, int64_t* idx) const {
    int64_t* o = a.out + r * k;
    if (!st.defined()) {
      for (int64_t j = 0; j < k; ++j) o[j] = -1;
      return;
    }
    select_top(v, len, k, o, it, idx);
  }
#ifdef GS_HAVE_VECTOR_EXT
  // A group of short rows, one row per vector lane (rows/short_rows.hpp): v = x + g and
  // noisy_logits' stats in columns, then select_insert's insertion into a sorted buffer
  // of k, without branches: element c moves every slot it beats (strictly, so that an
  // equal value never displaces an earlier one) one down.  Slots start at -inf, which
  // gives -1 as a slot holding a -inf value does.  The same indices as the row path.
  void short_group(int64_t r0, int64_t n) const {
    using V = Vec<T>;
    using I = lanes::Int<V>;
    constexpr int W = kW<T>;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    alignas(64) T x[kShortMax * W];
    load_columns(a.x, a.xs, r0, n, len, T(0), x);
    ShortNoise<T> noise;
    const T* g = noise.fill_columns(a.key, a.first_row, r0, n, len, Draw::gumbel);
    V v[kShortMax], best[kShortMax];
    const I defined = noisy_columns(x, g, len, v).defined;
    I at[kShortMax];
    for (int64_t j = 0; j < k; ++j) {
      best[j] = lanes::splat<V>(ninf);
      at[j] = I{};
    }
    for (int64_t c = 0; c < len; ++c) {
      const I ci = I{} + static_cast<int>(c);
      for (int64_t j = k - 1; j > 0; --j) {
        const I up = v[c] > best[j - 1];  // v goes above slot j - 1
        const I in = v[c] > best[j];
        best[j] = lanes::select(up, best[j - 1], lanes::select(in, v[c], best[j]));
        at[j] = up ? at[j - 1] : (in ? ci : at[j]);
      }
      const I in = v[c] > best[0];
      best[0] = lanes::select(in, v[c], best[0]);
      at[0] = in ? ci : at[0];
    }
    for (int64_t i = 0; i < n; ++i) {
      int64_t* o = a.out + (r0 + i) * k;
      for (int64_t j = 0; j < k; ++j)
        o[j] = defined[i] && best[j][i] != ninf ? static_cast<int64_t>(at[j][i]) : -1;
    }
  }
#endif
  void begin_split() {
    seg_st.resize(segments(len));
    vbuf.resize(len);
    ibuf.resize(big_k ? len : 0);
    items.resize(nitems);
  }
  void split_row(int64_t r) {
    const T* xr = a.x + row_offset(a.xs, r);
    for_segments(len, [&](int64_t j, int64_t begin, int64_t end) {
      seg_st[j] = noisy_logits(xr, a.xs.step, begin, end, a.key, row_q(r), vbuf.data());
    });
    if (interrupted()) return;  // Ctrl-C stopped the loop: no selection over the row
    finish(r, combine(seg_st.data(), segments(len)), vbuf.data(), items.data(), ibuf.data());
  }
  // Scratch per thread, allocated before anything is written.
  void begin_rows(int nthreads) {
    vbuf.resize(static_cast<int64_t>(nthreads) * len);
    ibuf.resize(big_k ? static_cast<int64_t>(nthreads) * len : 0);
    items.resize(static_cast<int64_t>(nthreads) * nitems);
  }
  void row(int64_t r, int tid) const {
    T* v = vbuf.data() + static_cast<int64_t>(tid) * len;
    const T* xr = a.x + row_offset(a.xs, r);
    // row r + 1's x, fetched meanwhile (see next_row_prefetch)
    const auto pf = next_row_prefetch(a.x, a.xs, static_cast<const T*>(nullptr), nullptr, r, xr);
    const RowStats<T> st = noisy_logits(xr, a.xs.step, 0, len, a.key, row_q(r), v, pf);
    finish(r, st, v, items.data() + tid * nitems,
           big_k ? ibuf.data() + static_cast<int64_t>(tid) * len : nullptr);
  }
};

template <class T>
void top_k_kernel(const TopKArgs<T>& a) {
  if (a.xs.nrows == 0 || a.k == 0) return;
  TopKOp<T> op(a);
  run_schedule<T>(op, a.xs.nrows, a.xs.len);
}

}  // namespace

GS_KERNEL(TopKArgs, top_k_kernel)

}  // namespace GS_TARGET
}  // namespace gumbel_softmax

#endif  // GS_BIND
