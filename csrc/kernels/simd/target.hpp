// Every header under csrc/kernels/simd/ and csrc/kernels/rows/, and every op file under
// csrc/kernels/ops/, is compiled once per SIMD target with that target's flags
// (-mavx2, -mavx512f, ...) and -DGS_TARGET=<name>, and puts everything it defines into
// namespace gumbel_softmax::GS_TARGET.  So no function compiled with one target's flags
// can stand in for another's at link time: an inline function or a template instance
// that the compiler emits out of line (a weak symbol) has a different name in each
// target (see csrc/README.md, "The per-target rule").
#pragma once

#ifndef GS_TARGET
#error "compiled per SIMD target: build through CMake (gs_add_target), which sets -DGS_TARGET"
#endif
