"""``gumbel_softmax.dask.relaxed_top_k`` (re-exported there): the sampler machinery of
``gumbel_softmax.dask`` with the blocks of ``_dask_blocks`` (kind ``"subset"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, SupportsIndex, Union, overload

if TYPE_CHECKING:
    import dask.array as da
    from numpy.typing import ArrayLike

    from ._typing import Axis, Flag, RngLike, TauLike

    _ArrayIn = Union[da.Array, ArrayLike]
    _TauIn = Union[TauLike, da.Array]


@overload
def relaxed_top_k(
    logits: _ArrayIn,
    k: SupportsIndex,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Literal[False] = False,
) -> da.Array: ...


@overload
def relaxed_top_k(
    logits: _ArrayIn,
    k: SupportsIndex,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Literal[True],
) -> tuple[da.Array, da.Array]: ...


@overload
def relaxed_top_k(
    logits: _ArrayIn,
    k: SupportsIndex,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Flag = False,
) -> da.Array | tuple[da.Array, da.Array]: ...


def relaxed_top_k(
    logits: _ArrayIn,
    k: SupportsIndex,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Flag = False,
) -> da.Array | tuple[da.Array, da.Array]:
    """Lazy :func:`gumbel_softmax.relaxed_top_k` on a Dask array, bitwise the NumPy call
    for any chunking of the batch dimensions.

    Parameters
    ----------
    logits, tau, hard, axis, rng, return_soft
        As for :func:`gumbel_softmax.dask.gumbel_softmax` (``tau`` a scalar or one per
        row); ``axis`` split into several chunks is rechunked into one.
    k : int
        ``1 <= k <= logits.shape[axis]``, checked at call time.

    Returns
    -------
    dask.array.Array
        The sample (for ``hard=True`` the exact k-hot of :func:`gumbel_softmax.top_k`),
        chunked as ``logits`` along the batch dimensions, one chunk along ``axis``; or
        ``(y, y_soft)`` for ``return_soft=True`` (one sampler call per block).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import gumbel_softmax as gs, gumbel_softmax.dask as gsd
    >>> x = np.random.default_rng(0).standard_normal((100, 8))
    >>> y = gsd.relaxed_top_k(da.from_array(x, chunks=(30, 4)), 3, 0.5, rng=5)
    >>> y.chunks[1]
    (8,)
    >>> bool((y.compute() == gs.relaxed_top_k(x, 3, 0.5, rng=5)).all())
    True
    """
    from .dask import _sampler  # (dask.py imports this module)

    return _sampler("subset", logits, tau, hard, return_soft, k, axis, rng)
