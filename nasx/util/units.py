"""Parsing of budget and size strings: 300M, 0.3G, 3e8, 1_000_000; 80MB, 1.5GiB (bytes)."""

from __future__ import annotations

import math
import re

from nasx.errors import BudgetError

_SCALE = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BYTES = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}
_NUMBER = r"(\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?"
_COUNT = re.compile(rf"^{_NUMBER}\s*([KMGT]?)$", re.IGNORECASE)
_SIZE = re.compile(rf"^{_NUMBER}\s*([KMG]I?B|B)$", re.IGNORECASE)
_LIMIT = 1e18


def _number(mantissa: str, exponent: str | None) -> float:
    return float(f"{mantissa.replace('_', '')}e{exponent or 0}")  # 1e999 -> inf, refused as too large


def _positive(value: float, text: str, what: str) -> int:
    if not math.isfinite(value) or value > _LIMIT:
        raise BudgetError(f"{what} {text!r} is too large")
    n = int(round(value))
    if n <= 0:
        raise BudgetError(f"{what} {text!r} must be positive, e.g. 300M")
    return n


# a bare number under this is a forgotten suffix (300 meant 300M), not a budget: no network is that small
BARE_MINIMUM = 1e5


def parse_budget(text, what: str = "budget") -> int:
    """parse_count for budgets: a number without a suffix under BARE_MINIMUM is refused as a missing suffix."""
    n = parse_count(text, what)
    bare = text.strip() if isinstance(text, str) else str(text)
    if n < BARE_MINIMUM and not bare[-1:].isalpha():
        raise BudgetError(f"{what} {bare!r} has no suffix and so means {n} (not {bare} million); did you mean {bare}M?")
    return n


def parse_count(text, what: str = "budget") -> int:
    """'300M' -> 300_000_000; accepts K/M/G/T suffixes, decimals and exponents."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _positive(float(text), str(text), what)
    if not isinstance(text, str) or len(text) > 64:
        raise BudgetError(f"{what} must be a number like 300M, 0.3G or 3e8, got {text!r}")
    stripped = text.strip()
    m = _COUNT.match(stripped.removeprefix("-"))
    if not m:
        raise BudgetError(f"{what} {text!r} is not a number like 300M, 0.3G or 3e8 (suffixes K, M, G, T)")
    if stripped.startswith("-"):  # -5M: the same words as 0
        raise BudgetError(f"{what} {text!r} must be positive, e.g. 300M")
    return _positive(_number(m[1], m[2]) * _SCALE[m[3].upper()], text, what)


def parse_size(text, what: str = "MAC budget") -> tuple[int, str]:
    """A MAC budget: elements ('20M') or bytes ('80MB', '1GiB'). Returns (value, 'elements'|'bytes')."""
    if isinstance(text, str):
        stripped = text.strip()
        m = _SIZE.match(stripped.removeprefix("-"))
        if m:
            if stripped.startswith("-"):
                raise BudgetError(f"{what} {text!r} must be positive, e.g. 80MB")
            return _positive(_number(m[1], m[2]) * _BYTES[m[3].upper()], text, what), "bytes"
        if not _COUNT.match(stripped.removeprefix("-")):  # what is a count gets the count's own words (0M: positive)
            raise BudgetError(f"{what} {text!r} is neither an element count like 20M nor a byte size like 80MB")
    return parse_budget(text, what), "elements"
