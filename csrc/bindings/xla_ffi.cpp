// XLA FFI handlers of gumbel_softmax.jax: the forward and backward kernels as XLA custom
// calls, so that a jitted JAX program runs them without a Python callback.  Compiled
// into _core only when the build finds jaxlib's FFI headers (CMakeLists.txt,
// GUMBEL_SOFTMAX_XLA_FFI); _core._xla_ffi then maps each target name to its handler (a
// PyCapsule for jax.ffi.register_ffi_target).  Without them gumbel_softmax.jax uses
// jax.pure_callback, with the same bits.
//
// The calls (python/gumbel_softmax/jax.py builds them; vmap_method "broadcast_all"):
//   gumbel_softmax_forward(key, x, tau; axis, ndim, hard, log, key_kind, static_tau,
//                          tau_mode) -> (y, y_soft)
//   gumbel_softmax_categorical(key, x; axis, ndim, key_kind) -> index
//   gumbel_softmax_backward(g, y_soft, tau; axis, ndim, static_tau, tau_mode)
//                          -> (grad_x, grad_tau)
// x has ndim dimensions, plus any leading batch dimensions that vmap added (every operand
// and result then has them): each batch element is one call of the NumPy API, with its own
// key and tau.  key: uint32 words (..., 2) (key_kind 0: seed = w0 << 32 | w1) or an integer
// seed (...) (key_kind 1).  tau: see tau_mode below (a placeholder in mode 0).  y_soft is
// empty (0 elements) unless requested; grad_tau is empty unless tau_mode is 1.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "bindings/common.hpp"
#include "bindings/philox_state.hpp"
#include "kernels/ops/softmax_args.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace gumbel_softmax {
namespace {

// The shape of one batch element: the last ndim dimensions of b.
struct Element {
  int64_t shape[RowSpec::kMaxDims];
  int64_t strides[RowSpec::kMaxDims];
  int ndim = 0;
  int64_t size = 1;   // elements per batch element
  int64_t batch = 1;  // batch elements
};

ffi::ErrorOr<Element> element_of(const ffi::AnyBuffer& b, int64_t ndim, int64_t axis) {
  const auto dims = b.dimensions();
  const int64_t rank = static_cast<int64_t>(dims.size());
  if (ndim < 1 || ndim > rank || ndim >= RowSpec::kMaxDims)
    return ffi::Unexpected(ffi::Error::InvalidArgument("gumbel_softmax: bad ndim"));
  if (axis < 0 || axis >= ndim)  // (gumbel_softmax.jax passes it normalised)
    return ffi::Unexpected(ffi::Error::InvalidArgument("gumbel_softmax: bad axis"));
  Element e;
  e.ndim = static_cast<int>(ndim);
  for (int64_t d = 0; d < rank - ndim; ++d) e.batch *= dims[d];
  for (int d = e.ndim - 1; d >= 0; --d) {
    e.shape[d] = dims[rank - ndim + d];
    e.strides[d] = e.size;
    e.size *= e.shape[d];
  }
  return e;
}

// The seed of batch element i of the key operand.
ffi::ErrorOr<uint64_t> seed_of(const ffi::AnyBuffer& key, int64_t kind, int64_t i) {
  using ffi::DataType;
  if (kind == 0) {
    if (key.element_type() != DataType::U32)
      return ffi::Unexpected(ffi::Error::InvalidArgument("key_or_seed: expected uint32 words"));
    const uint32_t* w = key.reinterpret_data<uint32_t>() + 2 * i;
    return (static_cast<uint64_t>(w[0]) << 32) | w[1];
  }
  int64_t s = 0;
  switch (key.element_type()) {
    case DataType::S32:
      s = key.reinterpret_data<int32_t>()[i];
      break;
    case DataType::S64:
      s = key.reinterpret_data<int64_t>()[i];
      break;
    case DataType::U32:
      return uint64_t{key.reinterpret_data<uint32_t>()[i]};
    case DataType::U64:
      return key.reinterpret_data<uint64_t>()[i];
    default:
      return ffi::Unexpected(ffi::Error::InvalidArgument("key_or_seed: expected an integer seed"));
  }
  if (s < 0)
    return ffi::Unexpected(ffi::Error::InvalidArgument(
        "key_or_seed as an int seed must be in [0, 2**64), got " + std::to_string(s)));
  return static_cast<uint64_t>(s);
}

// A float64 as Python's repr writes it (the shortest digits that read back the same).
std::string repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// Runs a kernel on this thread's call state, without asking Python about signals (XLA
// may run it on any thread, with or without the GIL).
template <class Kernel>
ffi::Error run_unpolled(Kernel&& kernel) {
  begin_call_unpolled();
  try {
    kernel();
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, "gumbel_softmax: out of memory");
  }
  return ffi::Error::Success();
}

// The rows of a call: vmap's batch dimensions (merged into one) before the element's,
// so that row i * rows_per + r is row r of batch element i.
struct Batch {
  RowSpec spec;
  int64_t rows_per = 0;  // rows per batch element
};

// Element offset of row r of s (its batch dimensions in C order).
int64_t offset_of(const RowSpec& s, int64_t r) {
  int64_t off = 0;
  for (int d = s.nbatch - 1; d >= 0; --d) {
    off += (r % s.shape[d]) * s.stride[d];
    r /= s.shape[d];
  }
  return off;
}

Batch batch_of(const Element& e, int axis) {
  int64_t shape[RowSpec::kMaxDims + 1], strides[RowSpec::kMaxDims + 1];
  shape[0] = e.batch;
  strides[0] = e.size;
  std::copy(e.shape, e.shape + e.ndim, shape + 1);
  std::copy(e.strides, e.strides + e.ndim, strides + 1);
  Batch b;
  b.spec = make_rowspec(e.ndim + 1, shape, strides, axis + 1);
  b.rows_per = e.size / std::max<int64_t>(b.spec.len, 1);
  return b;
}

// The temperatures (attribute tau_mode): 0, static_tau for every row; 1, the tau
// operand's values (traced), one per batch element or one per row, checked here as the
// NumPy API checks them; 2, the operand holds 1/tau in T, one per row or per element
// (computed and checked by the Python layer).  Fills inv (one per row) unless mode 0.
ffi::ErrorOr<double> tau_value(const ffi::AnyBuffer& tau, int64_t k) {
  double t = 0;
  if (tau.element_type() == ffi::DataType::F64)
    t = tau.reinterpret_data<double>()[k];
  else if (tau.element_type() == ffi::DataType::F32)
    t = tau.reinterpret_data<float>()[k];
  else
    return ffi::Unexpected(ffi::Error::InvalidArgument("tau: expected float32 or float64"));
  if (!(t > 0 && t < std::numeric_limits<double>::infinity()))
    return ffi::Unexpected(
        ffi::Error::InvalidArgument("tau must be positive and finite, got " + repr(t)));
  return t;
}

// How many tau values per batch element (1 or rows_per), or an error.
ffi::ErrorOr<int64_t> taus_per_element(const ffi::AnyBuffer& tau, const Element& e,
                                       const Batch& b) {
  const int64_t n = static_cast<int64_t>(tau.element_count());
  if (e.batch > 0 && n == e.batch) return int64_t{1};
  if (e.batch > 0 && n == e.batch * b.rows_per) return b.rows_per;
  if (e.batch == 0) return int64_t{1};
  return ffi::Unexpected(ffi::Error::InvalidArgument("tau: one value per row or per call"));
}

template <class T>
ffi::Error row_inv_taus(const ffi::AnyBuffer& tau, int64_t mode, const Element& e, const Batch& b,
                        std::vector<T>& inv) {
  if (mode == 0) return ffi::Error::Success();
  auto per = taus_per_element(tau, e, b);
  if (!per.has_value()) return per.error();
  inv.resize(static_cast<size_t>(b.spec.nrows));
  for (int64_t i = 0; i < e.batch; ++i)
    for (int64_t r = 0; r < b.rows_per; ++r) {
      const int64_t k = i * *per + (*per == 1 ? 0 : r);
      if (mode == 2) {
        inv[i * b.rows_per + r] = tau.reinterpret_data<T>()[k];
        continue;
      }
      auto t = tau_value(tau, k);
      if (!t.has_value()) return t.error();
      inv[i * b.rows_per + r] = inverse_tau<T>(*t);
    }
  return ffi::Error::Success();
}

// The forward, categorical and log variants as one kernel call over every row of every
// batch element: row r of element i draws row r of element i's key (ForwardArgs::
// row_keys), so a vmap over keys costs what one batched call does, with the bits of
// separate calls.
struct Mode {
  bool hard = false, log = false;
  int64_t key_kind = 0, tau_mode = 0;
  double static_tau = 1;
};

template <class T>
ffi::Error forward_t(const ffi::AnyBuffer& key, const ffi::AnyBuffer& x, const ffi::AnyBuffer& tau,
                     const Element& e, int axis, const Mode& m, T* y, T* y_soft, int64_t* index) {
  const Batch b = batch_of(e, axis);
  try {
    std::vector<PhiloxKey> keys(static_cast<size_t>(b.spec.nrows));
    std::vector<uint64_t> qs(static_cast<size_t>(b.spec.nrows));
    std::vector<T> inv;
    ffi::Error err = row_inv_taus(tau, m.tau_mode, e, b, inv);
    if (!err.success()) return err;
    for (int64_t i = 0; i < e.batch; ++i) {
      auto seed = seed_of(key, m.key_kind, i);
      if (!seed.has_value()) return seed.error();
      const PhiloxKey k = PhiloxState(*seed, 0).key();
      for (int64_t r = 0; r < b.rows_per; ++r) {
        keys[i * b.rows_per + r] = k;
        qs[i * b.rows_per + r] = static_cast<uint64_t>(r);
      }
    }
    ForwardArgs<T> a;
    a.xs = a.ys = a.ss = b.spec;
    a.x = x.reinterpret_data<T>();
    a.y = y;
    a.y_soft = m.hard ? y_soft : nullptr;
    a.index = index;
    a.inv_tau = inverse_tau<T>(m.static_tau);
    a.inv_taus = inv.empty() ? nullptr : inv.data();
    a.hard = m.hard;
    a.log = m.log;
    a.row_keys = keys.data();
    a.row_qs = qs.data();
    return run_unpolled([&] { run(a); });
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, "gumbel_softmax: out of memory");
  }
}

ffi::Error ffi_forward(ffi::AnyBuffer key, ffi::AnyBuffer x, ffi::AnyBuffer tau, int64_t axis,
                       int64_t ndim, bool hard, bool log, int64_t key_kind, double static_tau,
                       int64_t tau_mode, ffi::Result<ffi::AnyBuffer> y,
                       ffi::Result<ffi::AnyBuffer> y_soft) {
  auto e = element_of(x, ndim, axis);
  if (!e.has_value()) return e.error();
  const Mode m{hard, log, key_kind, tau_mode, static_tau};
  const bool soft_out = y_soft->element_count() != 0;
  const int ax = static_cast<int>(axis);
  ffi::Error err = ffi::Error::Success();
  if (x.element_type() == ffi::DataType::F64)
    err = forward_t<double>(key, x, tau, *e, ax, m, y->reinterpret_data<double>(),
                            soft_out ? y_soft->reinterpret_data<double>() : nullptr, nullptr);
  else if (x.element_type() == ffi::DataType::F32)
    err = forward_t<float>(key, x, tau, *e, ax, m, y->reinterpret_data<float>(),
                           soft_out ? y_soft->reinterpret_data<float>() : nullptr, nullptr);
  else
    return ffi::Error::InvalidArgument("logits: expected float32 or float64");
  if (err.success() && soft_out && !hard)  // the soft sample is y itself
    std::memcpy(y_soft->untyped_data(), y->untyped_data(), y->size_bytes());
  return err;
}

// categorical: the index of each row (int64, or int32 without jax_enable_x64).
ffi::Error ffi_categorical(ffi::AnyBuffer key, ffi::AnyBuffer x, int64_t axis, int64_t ndim,
                           int64_t key_kind, ffi::Result<ffi::AnyBuffer> index) {
  auto e = element_of(x, ndim, axis);
  if (!e.has_value()) return e.error();
  Mode m;
  m.key_kind = key_kind;
  const int ax = static_cast<int>(axis);
  const bool wide = index->element_type() == ffi::DataType::S64;
  try {
    std::vector<int64_t> tmp(wide ? 0 : index->element_count());
    int64_t* idx = wide ? index->reinterpret_data<int64_t>() : tmp.data();
    ffi::Error err = ffi::Error::Success();
    if (x.element_type() == ffi::DataType::F64)
      err = forward_t<double>(key, x, x, *e, ax, m, nullptr, nullptr, idx);
    else if (x.element_type() == ffi::DataType::F32)
      err = forward_t<float>(key, x, x, *e, ax, m, nullptr, nullptr, idx);
    else
      return ffi::Error::InvalidArgument("logits: expected float32 or float64");
    if (!wide)
      for (size_t k = 0; k < tmp.size(); ++k)
        index->reinterpret_data<int32_t>()[k] = static_cast<int32_t>(tmp[k]);
    return err;
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, "gumbel_softmax: out of memory");
  }
}

// grad_x by the backward kernel (one call over every row); with tau_mode 1, grad_tau =
// -sum(grad_x * log(y_soft)) over each row or each batch element (as tau is given; 0
// where y_soft is 0), in float64 (libm's log of the float64 value).
template <class T>
ffi::Error backward_t(const ffi::AnyBuffer& g, const ffi::AnyBuffer& ys, const ffi::AnyBuffer& tau,
                      const Element& e, int axis, const Mode& m, ffi::AnyBuffer gx,
                      ffi::AnyBuffer gtau) {
  const Batch b = batch_of(e, axis);
  try {
    std::vector<T> inv;
    ffi::Error err = row_inv_taus(tau, m.tau_mode, e, b, inv);
    if (!err.success()) return err;
    BackwardArgs<T> a;
    a.gs = a.ss = a.os = b.spec;
    a.grad_y = g.reinterpret_data<T>();
    a.y_soft = ys.reinterpret_data<T>();
    a.out = gx.reinterpret_data<T>();
    a.inv_tau = inverse_tau<T>(m.static_tau);
    a.inv_taus = inv.empty() ? nullptr : inv.data();
    err = run_unpolled([&] { run(a); });
    if (!err.success() || m.tau_mode != 1) return err;
    auto per = taus_per_element(tau, e, b);
    if (!per.has_value()) return per.error();
    std::vector<double> sums(tau.element_count(), 0.0);
    for (int64_t row = 0; row < b.spec.nrows; ++row) {
      const T* yr = a.y_soft + offset_of(b.spec, row);
      const T* gr = a.out + offset_of(b.spec, row);
      double sum = 0;
      for (int64_t c = 0; c < b.spec.len; ++c) {
        const double y = static_cast<double>(yr[c * b.spec.step]);
        if (y > 0) sum += static_cast<double>(gr[c * b.spec.step]) * std::log(y);
      }
      const int64_t i = row / std::max<int64_t>(b.rows_per, 1);
      sums[*per == 1 ? i : row] -= sum;
    }
    for (size_t k = 0; k < sums.size(); ++k) {
      if (gtau.element_type() == ffi::DataType::F64)
        gtau.reinterpret_data<double>()[k] = sums[k];
      else
        gtau.reinterpret_data<float>()[k] = static_cast<float>(sums[k]);
    }
    return ffi::Error::Success();
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, "gumbel_softmax: out of memory");
  }
}

ffi::Error ffi_backward(ffi::AnyBuffer g, ffi::AnyBuffer ys, ffi::AnyBuffer tau, int64_t axis,
                        int64_t ndim, double static_tau, int64_t tau_mode,
                        ffi::Result<ffi::AnyBuffer> gx, ffi::Result<ffi::AnyBuffer> gtau) {
  auto e = element_of(g, ndim, axis);
  if (!e.has_value()) return e.error();
  Mode m;
  m.static_tau = static_tau;
  m.tau_mode = tau_mode;
  const int ax = static_cast<int>(axis);
  if (g.element_type() == ffi::DataType::F64)
    return backward_t<double>(g, ys, tau, *e, ax, m, *gx, *gtau);
  if (g.element_type() == ffi::DataType::F32)
    return backward_t<float>(g, ys, tau, *e, ax, m, *gx, *gtau);
  return ffi::Error::InvalidArgument("grad_y: expected float32 or float64");
}

}  // namespace
}  // namespace gumbel_softmax

XLA_FFI_DEFINE_HANDLER_SYMBOL(GumbelSoftmaxForward, gumbel_softmax::ffi_forward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // key
                                  .Arg<ffi::AnyBuffer>()  // x
                                  .Arg<ffi::AnyBuffer>()  // tau
                                  .Attr<int64_t>("axis")
                                  .Attr<int64_t>("ndim")
                                  .Attr<bool>("hard")
                                  .Attr<bool>("log")
                                  .Attr<int64_t>("key_kind")
                                  .Attr<double>("static_tau")
                                  .Attr<int64_t>("tau_mode")
                                  .Ret<ffi::AnyBuffer>()    // y
                                  .Ret<ffi::AnyBuffer>());  // y_soft

XLA_FFI_DEFINE_HANDLER_SYMBOL(GumbelSoftmaxCategorical, gumbel_softmax::ffi_categorical,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // key
                                  .Arg<ffi::AnyBuffer>()  // x
                                  .Attr<int64_t>("axis")
                                  .Attr<int64_t>("ndim")
                                  .Attr<int64_t>("key_kind")
                                  .Ret<ffi::AnyBuffer>());  // index

XLA_FFI_DEFINE_HANDLER_SYMBOL(GumbelSoftmaxBackward, gumbel_softmax::ffi_backward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // grad_y
                                  .Arg<ffi::AnyBuffer>()  // y_soft
                                  .Arg<ffi::AnyBuffer>()  // tau
                                  .Attr<int64_t>("axis")
                                  .Attr<int64_t>("ndim")
                                  .Attr<double>("static_tau")
                                  .Attr<int64_t>("tau_mode")
                                  .Ret<ffi::AnyBuffer>()    // grad_x
                                  .Ret<ffi::AnyBuffer>());  // grad_tau

namespace gumbel_softmax {
namespace {
void bind(py::module_& m) {
  py::dict targets;
  targets["gumbel_softmax_forward"] = py::capsule(reinterpret_cast<void*>(&GumbelSoftmaxForward));
  targets["gumbel_softmax_categorical"] =
      py::capsule(reinterpret_cast<void*>(&GumbelSoftmaxCategorical));
  targets["gumbel_softmax_backward"] = py::capsule(reinterpret_cast<void*>(&GumbelSoftmaxBackward));
  m.attr("_xla_ffi") = targets;
}
}  // namespace
GS_BINDING(bind)
}  // namespace gumbel_softmax
