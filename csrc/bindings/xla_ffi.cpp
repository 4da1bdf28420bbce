// XLA FFI handlers of gumbel_softmax.jax: the forward and backward kernels as XLA custom
// calls, so that a jitted JAX program runs them without a Python callback.  Compiled
// into _core only when the build finds jaxlib's FFI headers (CMakeLists.txt,
// GUMBEL_SOFTMAX_XLA_FFI); _core._xla_ffi then maps each target name to its handler (a
// PyCapsule for jax.ffi.register_ffi_target).  Without them gumbel_softmax.jax uses
// jax.pure_callback, with the same bits.
//
// The calls (python/gumbel_softmax/jax.py builds them; vmap_method "broadcast_all"):
//   gumbel_softmax_forward(key, x, tau; axis, ndim, hard, key_kind, static_tau,
//                          traced_tau) -> (y, y_soft)
//   gumbel_softmax_backward(g, y_soft, tau; axis, ndim, static_tau, traced_tau)
//                          -> (grad_x, grad_tau)
// x has ndim dimensions, plus any leading batch dimensions that vmap added (every operand
// and result then has them): each batch element is one call of the NumPy API, with its own
// key and tau.  key: uint32 words (..., 2) (key_kind 0: seed = w0 << 32 | w1) or an integer
// seed (...) (key_kind 1).  tau: the traced temperature (...), or a placeholder when
// traced_tau is false (static_tau is used).  y_soft is empty (0 elements per batch
// element) unless requested; grad_tau is empty unless traced_tau.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

ffi::ErrorOr<Element> element_of(const ffi::AnyBuffer& b, int64_t ndim) {
  const auto dims = b.dimensions();
  const int64_t rank = static_cast<int64_t>(dims.size());
  if (ndim < 1 || ndim > rank || ndim >= RowSpec::kMaxDims)
    return ffi::Unexpected(ffi::Error::InvalidArgument("gumbel_softmax: bad ndim"));
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

// tau of batch element i: the traced value, checked as the NumPy API checks it.
ffi::ErrorOr<double> tau_of(const ffi::AnyBuffer& tau, bool traced, double fixed, int64_t i) {
  if (!traced) return fixed;
  double t = 0;
  if (tau.element_type() == ffi::DataType::F64)
    t = tau.reinterpret_data<double>()[i];
  else if (tau.element_type() == ffi::DataType::F32)
    t = tau.reinterpret_data<float>()[i];
  else
    return ffi::Unexpected(ffi::Error::InvalidArgument("tau: expected float32 or float64"));
  if (!(t > 0 && t < std::numeric_limits<double>::infinity()))
    return ffi::Unexpected(
        ffi::Error::InvalidArgument("tau must be positive and finite, got " + repr(t)));
  return t;
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

// One kernel call over every row of every batch element: row r of element i draws row
// r of element i's key (ForwardArgs::row_keys), with element i's tau (per row), so the
// batch costs what one batched call does, with the bits of separate calls.
template <class T>
ffi::Error forward_t(const ffi::AnyBuffer& key, const ffi::AnyBuffer& x, const ffi::AnyBuffer& tau,
                     const Element& e, int axis, bool hard, int64_t key_kind, double static_tau,
                     bool traced_tau, ffi::AnyBuffer y, ffi::AnyBuffer y_soft) {
  const bool soft_out = y_soft.element_count() != 0;
  // The batch as one array: the batch dimensions merged into one, before the element's.
  int64_t shape[RowSpec::kMaxDims + 1], strides[RowSpec::kMaxDims + 1];
  shape[0] = e.batch;
  strides[0] = e.size;
  std::copy(e.shape, e.shape + e.ndim, shape + 1);
  std::copy(e.strides, e.strides + e.ndim, strides + 1);
  const RowSpec spec = make_rowspec(e.ndim + 1, shape, strides, axis + 1);
  const int64_t rows_per = e.size / std::max<int64_t>(spec.len, 1);
  try {
    std::vector<PhiloxKey> keys(static_cast<size_t>(spec.nrows));
    std::vector<uint64_t> qs(static_cast<size_t>(spec.nrows));
    std::vector<T> inv_taus(traced_tau ? static_cast<size_t>(spec.nrows) : 0);
    for (int64_t i = 0; i < e.batch; ++i) {
      auto seed = seed_of(key, key_kind, i);
      if (!seed.has_value()) return seed.error();
      auto t = tau_of(tau, traced_tau, static_tau, i);
      if (!t.has_value()) return t.error();
      const PhiloxKey k = PhiloxState(*seed, 0).key();
      for (int64_t r = 0; r < rows_per; ++r) {
        keys[i * rows_per + r] = k;
        qs[i * rows_per + r] = static_cast<uint64_t>(r);
        if (traced_tau) inv_taus[i * rows_per + r] = inverse_tau<T>(*t);
      }
    }
    ForwardArgs<T> a;
    a.xs = a.ys = a.ss = spec;
    a.x = x.reinterpret_data<T>();
    a.y = y.reinterpret_data<T>();
    a.y_soft = soft_out && hard ? y_soft.reinterpret_data<T>() : nullptr;
    a.inv_tau = inverse_tau<T>(static_tau > 0 ? static_tau : 1.0);
    a.inv_taus = traced_tau ? inv_taus.data() : nullptr;
    a.hard = hard;
    a.row_keys = keys.data();
    a.row_qs = qs.data();
    ffi::Error err = run_unpolled([&] { run(a); });
    if (!err.success()) return err;
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, "gumbel_softmax: out of memory");
  }
  if (soft_out && !hard)
    std::copy(y.reinterpret_data<T>(), y.reinterpret_data<T>() + e.batch * e.size,
              y_soft.reinterpret_data<T>());
  return ffi::Error::Success();
}

ffi::Error ffi_forward(ffi::AnyBuffer key, ffi::AnyBuffer x, ffi::AnyBuffer tau, int64_t axis,
                       int64_t ndim, bool hard, int64_t key_kind, double static_tau,
                       bool traced_tau, ffi::Result<ffi::AnyBuffer> y,
                       ffi::Result<ffi::AnyBuffer> y_soft) {
  auto e = element_of(x, ndim);
  if (!e.has_value()) return e.error();
  const int ax = static_cast<int>(axis);
  if (x.element_type() == ffi::DataType::F64)
    return forward_t<double>(key, x, tau, *e, ax, hard, key_kind, static_tau, traced_tau, *y,
                             *y_soft);
  if (x.element_type() == ffi::DataType::F32)
    return forward_t<float>(key, x, tau, *e, ax, hard, key_kind, static_tau, traced_tau, *y,
                            *y_soft);
  return ffi::Error::InvalidArgument("logits: expected float32 or float64");
}

// grad_x by the backward kernel; grad_tau = -sum(grad_x * log(y_soft)) over the batch
// element (0 where y_soft is 0), in float64 (libm's log of the float64 value).
template <class T>
ffi::Error backward_t(const ffi::AnyBuffer& g, const ffi::AnyBuffer& ys, const ffi::AnyBuffer& tau,
                      const Element& e, int axis, double static_tau, bool traced_tau,
                      ffi::AnyBuffer gx, ffi::AnyBuffer gtau) {
  const RowSpec spec = make_rowspec(e.ndim, e.shape, e.strides, axis);
  for (int64_t i = 0; i < e.batch; ++i) {
    auto t = tau_of(tau, traced_tau, static_tau, i);
    if (!t.has_value()) return t.error();
    BackwardArgs<T> a;
    a.gs = a.ss = a.os = spec;
    a.grad_y = g.reinterpret_data<T>() + i * e.size;
    a.y_soft = ys.reinterpret_data<T>() + i * e.size;
    a.out = gx.reinterpret_data<T>() + i * e.size;
    a.inv_tau = inverse_tau<T>(*t);
    ffi::Error err = run_unpolled([&] { run(a); });
    if (!err.success()) return err;
    if (!traced_tau) continue;
    double sum = 0;
    for (int64_t k = 0; k < e.size; ++k) {
      const double y = static_cast<double>(a.y_soft[k]);
      if (y > 0) sum += static_cast<double>(a.out[k]) * std::log(y);
    }
    if (gtau.element_type() == ffi::DataType::F64)
      gtau.reinterpret_data<double>()[i] = -sum;
    else
      gtau.reinterpret_data<float>()[i] = static_cast<float>(-sum);
  }
  return ffi::Error::Success();
}

ffi::Error ffi_backward(ffi::AnyBuffer g, ffi::AnyBuffer ys, ffi::AnyBuffer tau, int64_t axis,
                        int64_t ndim, double static_tau, bool traced_tau,
                        ffi::Result<ffi::AnyBuffer> gx, ffi::Result<ffi::AnyBuffer> gtau) {
  auto e = element_of(g, ndim);
  if (!e.has_value()) return e.error();
  const int ax = static_cast<int>(axis);
  if (g.element_type() == ffi::DataType::F64)
    return backward_t<double>(g, ys, tau, *e, ax, static_tau, traced_tau, *gx, *gtau);
  if (g.element_type() == ffi::DataType::F32)
    return backward_t<float>(g, ys, tau, *e, ax, static_tau, traced_tau, *gx, *gtau);
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
                                  .Attr<int64_t>("key_kind")
                                  .Attr<double>("static_tau")
                                  .Attr<bool>("traced_tau")
                                  .Ret<ffi::AnyBuffer>()    // y
                                  .Ret<ffi::AnyBuffer>());  // y_soft

XLA_FFI_DEFINE_HANDLER_SYMBOL(GumbelSoftmaxBackward, gumbel_softmax::ffi_backward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()  // grad_y
                                  .Arg<ffi::AnyBuffer>()  // y_soft
                                  .Arg<ffi::AnyBuffer>()  // tau
                                  .Attr<int64_t>("axis")
                                  .Attr<int64_t>("ndim")
                                  .Attr<double>("static_tau")
                                  .Attr<bool>("traced_tau")
                                  .Ret<ffi::AnyBuffer>()    // grad_x
                                  .Ret<ffi::AnyBuffer>());  // grad_tau

namespace gumbel_softmax {
namespace {
void bind(py::module_& m) {
  py::dict targets;
  targets["gumbel_softmax_forward"] = py::capsule(reinterpret_cast<void*>(&GumbelSoftmaxForward));
  targets["gumbel_softmax_backward"] = py::capsule(reinterpret_cast<void*>(&GumbelSoftmaxBackward));
  m.attr("_xla_ffi") = targets;
}
}  // namespace
GS_BINDING(bind)
}  // namespace gumbel_softmax
