# Type stubs of the compiled module (csrc/bindings); keep in step with the bindings.
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

have_openmp: bool

class Philox:
    def __init__(self, seed: int | None = None, *, counter: int = 0) -> None: ...
    @property
    def seed(self) -> int: ...
    @property
    def key(self) -> tuple[int, int]: ...
    @property
    def counter(self) -> int: ...
    def reserve(self, n: int) -> int: ...
    def _unreserve(self, start: int, n: int) -> bool: ...
    def __copy__(self) -> Philox: ...
    def __deepcopy__(self, memo: Any) -> Philox: ...
    def __eq__(self, other: object) -> bool: ...

# What the kernels accept as rng: a Philox, or a Generator whose seed they draw once
# every allocation of the call has succeeded.
_KernelRng = Philox | np.random.Generator

def philox4x32(counters: npt.NDArray[np.uint32], k0: int, k1: int) -> npt.NDArray[np.uint32]: ...
def noise(
    shape: list[int], is_double: bool, logistic: bool, rng: _KernelRng, out: np.ndarray | None
) -> np.ndarray: ...
def gumbel_softmax(
    logits: np.ndarray,
    tau: float,
    inv_taus: np.ndarray | None,
    hard: bool,
    log: bool,
    axis: int,
    rng: _KernelRng,
    out: np.ndarray | None,
    return_soft: bool,
    mask: npt.NDArray[np.uint8] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def masked_row_limit(itemsize: int) -> int: ...

# The fast path of the common case (csrc/bindings/fast_path.hpp): the result, or None
# where the arguments are not of the common kind (then the general path runs).
def forward_fast(
    logits: Any,
    tau: Any,
    hard: Any,
    log: bool,
    axis: Any,
    rng: Any,
    out: Any,
    return_soft: Any,
    mask: Any,
) -> np.ndarray | tuple[np.ndarray, np.ndarray] | None: ...
def categorical_fast(
    logits: Any, axis: Any, rng: Any, mask: Any
) -> npt.NDArray[np.int64] | None: ...
def noise_fast(shape: Any, dtype: Any, rng: Any, out: Any, logistic: bool) -> np.ndarray | None: ...

# The same, else the general path's result (the Python functions set_general_paths set).
def forward_entry(
    logits: Any,
    tau: Any,
    hard: Any,
    log: bool,
    axis: Any,
    rng: Any,
    out: Any,
    return_soft: Any,
    mask: Any,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def categorical_entry(logits: Any, axis: Any, rng: Any, mask: Any) -> npt.NDArray[np.int64]: ...
def set_general_paths(
    forward: Callable[..., np.ndarray | tuple[np.ndarray, np.ndarray]],
    categorical: Callable[..., npt.NDArray[np.int64]],
) -> None: ...
def categorical(
    logits: np.ndarray, axis: int, rng: _KernelRng, mask: npt.NDArray[np.uint8] | None = None
) -> npt.NDArray[np.int64]: ...
def concrete_log_prob(
    y: np.ndarray,
    logits: np.ndarray,
    tau: np.ndarray,
    cst: np.ndarray,
    tau_step: int,
    log_space: bool,
    axis: int,
) -> np.ndarray: ...
def conditional_gumbel(
    logits: np.ndarray,
    index: npt.NDArray[np.int64],
    axis: int,
    rng: _KernelRng,
    out: np.ndarray | None,
) -> np.ndarray: ...
def gumbel_rao_backward(
    grad_y: np.ndarray,
    logits: np.ndarray,
    y_hard: np.ndarray,
    tau: float,
    inv_taus: np.ndarray | None,
    samples: int,
    axis: int,
    rng: _KernelRng,
    out: np.ndarray | None,
) -> np.ndarray: ...
def reinmax_backward(
    grad_y: np.ndarray,
    logits: np.ndarray,
    y_hard: np.ndarray,
    grad_p: np.ndarray | None,
    tau: float,
    inv_taus: np.ndarray | None,
    axis: int,
    out: np.ndarray | None,
) -> np.ndarray: ...
def half_to_float(src: npt.NDArray[np.uint16], bf16: bool) -> npt.NDArray[np.float32]: ...
def float_to_half(
    src: npt.NDArray[np.float32], bf16: bool, out: npt.NDArray[np.uint16] | None = None
) -> npt.NDArray[np.uint16]: ...
def gumbel_softmax_half(
    x_bits: npt.NDArray[np.uint16],
    tau: float,
    inv_taus: np.ndarray | None,
    hard: bool,
    log: bool,
    axis: int,
    rng: _KernelRng,
    y_bits: npt.NDArray[np.uint16],
    soft_bits: npt.NDArray[np.uint16] | None,
    bf16: bool,
) -> None: ...
def top_k(logits: np.ndarray, k: int, axis: int, rng: _KernelRng) -> npt.NDArray[np.int64]: ...
def relaxed_top_k(
    logits: np.ndarray,
    k: int,
    tau: float,
    inv_taus: np.ndarray | None,
    hard: bool,
    axis: int,
    rng: _KernelRng,
    out: np.ndarray | None,
    return_soft: bool,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def relaxed_top_k_backward(
    grad_y: np.ndarray,
    logits: np.ndarray,
    k: int,
    tau: float,
    inv_taus: np.ndarray | None,
    axis: int,
    rng: _KernelRng,
    out: np.ndarray | None,
) -> np.ndarray: ...
def gumbel_softmax_backward(
    grad_y: np.ndarray,
    y_soft: np.ndarray,
    tau: float,
    inv_taus: np.ndarray | None,
    axis: int,
    out: np.ndarray | None,
) -> np.ndarray: ...
def gumbel_softmax_backward_recompute(
    grad_y: np.ndarray,
    logits: np.ndarray,
    tau: float,
    inv_taus: np.ndarray | None,
    axis: int,
    rng: _KernelRng,
    out: np.ndarray | None,
    round_soft: int,
) -> np.ndarray: ...
def relaxed_bernoulli(
    logits: np.ndarray,
    inv_tau: np.ndarray,
    hard: bool,
    rng: _KernelRng,
    out: np.ndarray | None,
    return_soft: bool,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def relaxed_bernoulli_backward(
    grad_y: np.ndarray, y_soft: np.ndarray, inv_tau: np.ndarray, out: np.ndarray | None
) -> np.ndarray: ...
def get_num_threads() -> int: ...
def thread_limit() -> int: ...
def _in_fork_child() -> bool: ...
def _last_team_size() -> int: ...
def set_num_threads(n: int) -> None: ...
def _set_short_rows(on: bool) -> None: ...
def _set_flush_denormal(on: bool) -> bool: ...
def cpu_target() -> str: ...
def cpu_targets() -> list[str]: ...
def target_warning() -> str: ...
def _eval_f32(name: str, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
def _eval_f64(name: str, x: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
def _noise_f32(bits: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
def _noise_f64(bits: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
