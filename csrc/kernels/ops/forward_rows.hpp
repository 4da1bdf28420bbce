// The forward's rows, per target: what a forward call needs per row (Fwd) and a group of
// short rows computed one row per vector lane (ShortGroup), shared by the forward
// (softmax_forward.cpp) and the memory-saving backward (softmax_backward.cpp), which
// recomputes the soft sample of short rows with it.  Compiled into each target's files.
#pragma once

#include "rows/pass1.hpp"
#include "rows/short_rows.hpp"
#include "rows/softmax.hpp"
#include "softmax_args.hpp"

namespace gumbel_softmax {
namespace GS_TARGET {
namespace {

// The one-hot of a row (or NaN when the row has no defined sample).
template <class T>
void write_hard(T* yr, int64_t step, int64_t len, const RowStats<T>& st) {
  if (!st.defined()) return fill_nan(yr, step, len);
  fill_row(yr, step, len, T(0));
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
    if (a.hard) write_hard(a.y + row_offset(a.ys, r), a.ys.step, a.xs.len, st);
  }
  bool needs_stats() const { return a.hard || a.index; }
  // Row r's Philox key and stream row: the call's, or the row's own (row_keys).
  PhiloxKey key(int64_t r) const { return a.row_keys ? a.row_keys[r] : a.key; }
  uint64_t row_q(int64_t r) const {
    return a.row_keys ? a.row_qs[r] : a.first_row + static_cast<uint64_t>(r);
  }
};

#ifdef GS_HAVE_VECTOR_EXT
// One group of short rows (see rows/short_rows.hpp), one row per lane.
template <class T>
struct ShortGroup {
  using V = Vec<T>;
  using I = lanes::Int<V>;
  static constexpr int W = kW<T>;
  static constexpr T ninf = -std::numeric_limits<T>::infinity();
  const Fwd<T>& f;
  const ForwardArgs<T>& a;
  const int64_t r0, nrows, len;
  // Per lane: 1/tau and whether the row takes the tau = 1 path (see unit_exp_sum); a
  // group may mix both when tau is per row.  Lanes past the last row: 1/tau = 1,
  // general path, never written out.
  V itau = lanes::splat<V>(T(1));
  I unit{};
  I flat{};  // lanes whose 1/tau is 0 (tau -> infinity, see flatten_row): 1/tau = 1 here
  bool any_unit = false, any_general = false, any_flat = false;
  // Columns (rows/short_rows.hpp): xt[c * W + i] = element c of row i, the same for the
  // noise (gt, ShortNoise::fill_columns); lanes past the last row get x = -inf and
  // finite noise (never written out).
  alignas(64) T xt[kShortMax * W];
  const T* gt = nullptr;
  V v[kShortMax];
  V vmax = lanes::splat<V>(ninf);
  I vidx{}, vnan{};
  V res[kShortMax];  // the soft sample (or its log) of every lane
  V unit_sum{};      // tau = 1 lanes: the sum, NaN exactly for rows with no sample

  ShortGroup(const Fwd<T>& fwd, int64_t first, int64_t n)
      : f(fwd), a(fwd.a), r0(first), nrows(n), len(fwd.a.xs.len) {}

  GS_INLINE void lanes_tau() {
    if (!a.inv_taus) {  // one tau for the call: every lane alike
      const bool u = f.unit(r0), zero = a.inv_tau == T(0);
      itau = lanes::splat<V>(zero ? T(1) : a.inv_tau);
      flat = zero ? ~I{} : I{};
      unit = u ? ~I{} : I{};
      any_flat = zero;
      any_unit = u;
      any_general = !u;
      return;
    }
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
  }

  GS_INLINE void transpose(const T* noise_columns) {
    gt = noise_columns;
    load_columns(a.x, a.xs, r0, nrows, len, ninf, xt);
    if (a.mask) {
      for (int i = 0; i < nrows; ++i) {
        const uint8_t* mr = a.mask + row_offset(a.ms, r0 + i);
        for (int64_t c = 0; c < len; ++c)
          if (!mr[c * a.ms.step]) xt[c * W + i] = ninf;
      }
    }
  }

  // Pass 1 on v = x + g (max, first argmax, NaN) as in noisy_logits, for the rows of the
  // general path and for the one-hot; g = -log(E) exactly as bits_to_gumbel computes it
  // when the noise was drawn as E.  The argmax only where it is used (kIndex: the one-hot
  // or categorical's index); the running values in locals, not in the group's members,
  // which the compiler would store at every step.
  template <bool kIndex>
  GS_INLINE void pass1() {
    V m = vmax;
    I idx = vidx, nan = vnan;
    const bool log_noise = any_unit;
    for (int64_t c = 0; c < len; ++c) {
      V gc = lanes::load<V>(gt + c * W);
      if (log_noise) gc = -vmath::log(gc);
      const V vc = lanes::load<V>(xt + c * W) + gc;
      v[c] = vc;
      const I greater = vc > m;
      m = lanes::select(greater, vc, m);
      if (kIndex) idx = greater ? (I{} + static_cast<int>(c)) : idx;
      nan |= (vc != vc);
    }
    vmax = m;
    vidx = idx;
    vnan = nan;
  }

  GS_INLINE void general_soft() {
    if (any_flat)  // as flatten_row, on the flat lanes only
      for (int64_t c = 0; c < len; ++c) v[c] = lanes::select(flat & (v[c] != ninf), vmax, v[c]);
    V acc[kLanes] = {};
    for (int64_t c = 0; c < len; ++c) {
      v[c] = (v[c] - vmax) * itau;  // <= 0, or NaN in lanes past the rows
      res[c] = vmath::exp_scaled_nonpos<0>(v[c]);
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

  GS_INLINE void unit_soft() {
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

  GS_INLINE void store(T* soft) {
    if (soft) {
      // Rows with no sample are NaN: unit lanes where the sum is NaN, the others where
      // pass 1 saw a NaN or a non-finite maximum (RowStats::defined).
      const V inf = lanes::splat<V>(std::numeric_limits<T>::infinity());
      const I general_ok = (vnan == 0) & (vmax > -inf) & (vmax < inf);
      const I ok = (unit & (unit_sum == unit_sum)) | (~unit & general_ok);
      const V nan = lanes::splat<V>(kNaN<T>);
      for (int64_t c = 0; c < len; ++c) lanes::store(xt + c * W, lanes::select(ok, res[c], nan));
      store_columns(xt, soft, *f.soft_spec, r0, nrows, len);
    }
    if (!a.hard && !a.index) return;
    for (int i = 0; i < nrows; ++i) {
      RowStats<T> st;
      st.max = vmax[i];
      st.argmax = vidx[i];
      st.nan = vnan[i] != 0;
      f.finish(r0 + i, st);
    }
  }
};

template <class T>
void forward_short_group(const Fwd<T>& f, int64_t r0, int64_t nrows) {
  ShortGroup<T> grp(f, r0, nrows);
  grp.lanes_tau();
  ShortNoise<T> noise;
  const Draw draw = grp.any_unit ? Draw::exponential : Draw::gumbel;
  grp.transpose(f.a.row_keys
                    ? noise.fill_columns(f.a.row_keys + r0, f.a.row_qs + r0, nrows, grp.len, draw)
                    : noise.fill_columns(f.a.key, f.a.first_row, r0, nrows, grp.len, draw));
  if (f.needs_stats())
    grp.template pass1<true>();
  else if (grp.any_general)
    grp.template pass1<false>();
  T* soft = f.soft;
  if (soft && grp.any_general) grp.general_soft();
  if (soft && grp.any_unit) grp.unit_soft();
  grp.store(soft);
}
#endif

}  // namespace
}  // namespace GS_TARGET
}  // namespace gumbel_softmax
