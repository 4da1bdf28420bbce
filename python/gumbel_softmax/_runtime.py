"""The public functions about the process rather than the samplers: the Philox block
function, the SIMD target in use and the thread count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, SupportsIndex

from . import _core, _ops

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from numpy.typing import ArrayLike


def philox4x32(counters: ArrayLike, key: ArrayLike) -> npt.NDArray[np.uint32]:
    """The Philox4x32-10 block function of Random123.

    Parameters
    ----------
    counters : array_like of int, shape (..., 4)
        Counter words, each in ``[0, 2**32)``.
    key : array_like of int, shape (2,)
        Key words, each in ``[0, 2**32)``.

    Returns
    -------
    ndarray of uint32, shape (..., 4)

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> [hex(w) for w in gs.philox4x32([0, 0, 0, 0], [0, 0])]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    return _ops.philox4x32(counters, key)


def cpu_target() -> str:
    """The SIMD target the kernels run on: ``"baseline"``, ``"avx2"`` or ``"avx512"``.

    Chosen once per process from CPUID; ``GUMBEL_SOFTMAX_TARGET`` forces one (an
    unsupported choice warns and falls back).  Every target gives identical bits.

    Returns
    -------
    str

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.cpu_target() in gs.cpu_targets()
    True
    """
    return _core.cpu_target()


def cpu_targets() -> list[str]:
    """The targets compiled into this build that this CPU supports, best last.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.cpu_targets()[0]  # always compiled, runs on any CPU
    'baseline'
    """
    return list(_core.cpu_targets())


def get_num_threads() -> int:
    """Threads the kernels use for large calls (1 without OpenMP).

    Returns
    -------
    int

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def set_num_threads(n: SupportsIndex | None) -> None:
    """Use ``n`` threads for large calls in the whole process; ``0`` or ``None`` follows
    OpenMP's setting (``OMP_NUM_THREADS``, ``threadpoolctl``) again.  Results never
    depend on the thread count.

    Parameters
    ----------
    n : int or None
        Threads, ``>= 0``; ``0`` or ``None`` resets.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.zeros((4096, 64), np.float32)
    >>> gs.set_num_threads(1)
    >>> y1 = gs.gumbel_softmax(x, rng=7)
    >>> gs.set_num_threads(0)  # back to OpenMP's default
    >>> bool((gs.gumbel_softmax(x, rng=7) == y1).all())
    True
    """
    _ops.set_num_threads(n)
