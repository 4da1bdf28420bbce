"""Type aliases of the public signatures, for type checkers only.

The modules import this under ``typing.TYPE_CHECKING`` (their annotations are strings,
``from __future__ import annotations``), so importing the package never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsIndex, Union

import numpy as np
import numpy.typing as npt

from ._core import Philox

#: Any NumPy array (results, ``out``).
Array = npt.NDArray[Any]
#: A bool argument: True, False or a NumPy bool (anything else raises TypeError).
Flag = Union[bool, np.bool_]
#: A temperature: a positive finite real scalar, or an array of them (per row).
TauLike = Union[
    float,
    "np.floating[Any]",
    "np.integer[Any]",
    npt.NDArray[Any],
    Sequence[float],
    Sequence[Sequence[float]],
]
#: SPEC 7: None (OS entropy), an int seed, a Philox or a numpy.random.Generator.
RngLike = Union[None, int, "np.integer[Any]", Philox, np.random.Generator]
#: A noise shape: an int or a sequence of ints.
ShapeLike = Union[SupportsIndex, Sequence[SupportsIndex]]
#: An axis: any integer but a bool.
Axis = SupportsIndex
