"""Numbers in request bodies: JSON numbers only (not booleans), finite, integral where an int
is asked, within a range. NaN and infinities never reach a comparison or int()."""

from __future__ import annotations

import math


def valid_number(value, low: float, high: float, kind=float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if kind is int and value != int(value):
        return False
    return low <= value <= high
