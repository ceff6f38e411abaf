"""Array helpers shared by the phases: OSM tag columns and NULL-aware comparisons.

The rules of the reference are SQL over tag columns; these helpers give the same answers on
numpy object arrays (None = NULL): :class:`Tags` reads a tag column, :func:`eq`, :func:`isin`
and :func:`present` compare, :func:`int_array` makes a nullable integer column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


class Tags:
    """Column access to the OSM tags of each segment (object arrays, None = absent)."""

    def __init__(self, frame: Any):
        self.frame = frame
        self.n = len(frame)

    def __call__(self, key: str) -> np.ndarray:
        if key in self.frame.columns:
            return self.frame[key].to_numpy(dtype=object)
        return np.full(self.n, None, dtype=object)

    def eq(self, key: str, value: str) -> np.ndarray:
        return eq(self(key), value)

    def isin(self, key: str, values: Iterable[str]) -> np.ndarray:
        return isin(self(key), values)

    def present(self, key: str) -> np.ndarray:
        return present(self(key))


def eq(a: np.ndarray, value: Any) -> np.ndarray:
    """``a == value`` element-wise as a bool array (None never equals a string)."""
    return np.asarray(a == value, dtype=bool)


def isin(a: np.ndarray, values: Iterable[Any]) -> np.ndarray:
    """Whether each element of ``a`` is one of ``values`` (a bool array)."""
    import pandas as pd

    return pd.Series(a, dtype=object).isin(list(values)).to_numpy(dtype=bool)


def present(a: np.ndarray) -> np.ndarray:
    """Whether each element of ``a`` is set (not None/NaN), as a bool array."""
    import pandas as pd

    return ~pd.isna(np.asarray(a, dtype=object))


def int_array(x: np.ndarray) -> Any:
    """Float array (NaN = NULL) -> nullable Int64 array."""
    import pandas as pd

    x = np.asarray(x, dtype=float)
    nan = np.isnan(x)
    return pd.arrays.IntegerArray(np.where(nan, 0, x).astype(np.int64), nan)
