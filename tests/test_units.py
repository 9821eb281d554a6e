"""Budget and size strings (nasx.util.units): what a user types after --budget / --mac-budget."""

from __future__ import annotations

import pytest

from nasx import BudgetError
from nasx.util.units import parse_count, parse_size


@pytest.mark.parametrize(
    "text,value",
    [
        ("300M", 300_000_000),
        ("0.3G", 300_000_000),
        ("3e8", 300_000_000),
        ("1_000_000", 1_000_000),
        ("20M", 20_000_000),
        ("300m", 300_000_000),
        ("1.5K", 1_500),
        ("2T", 2_000_000_000_000),
        (" 300M ", 300_000_000),
        ("3E+8", 300_000_000),
        ("42", 42),
    ],
)
def test_parse_count(text, value):
    n = parse_count(text)
    assert n == value
    assert type(n) is int


@pytest.mark.parametrize(
    "text,value,unit",
    [
        ("20M", 20_000_000, "elements"),
        ("300M", 300_000_000, "elements"),
        ("80MB", 80_000_000, "bytes"),
        ("1GiB", 1 << 30, "bytes"),
        ("1.5GiB", 3 << 29, "bytes"),
        ("512KiB", 512 << 10, "bytes"),
        ("64B", 64, "bytes"),
        ("1_000_000", 1_000_000, "elements"),
    ],
)
def test_parse_size(text, value, unit):
    got = parse_size(text)
    assert got == (value, unit)
    assert type(got[0]) is int


REJECTED = [
    "300X",
    "-5M",
    "0",
    "",
    "nan",
    "inf",
    "1e400",
    None,
    "M",
    "3 00M",
    "0.0000000001",
    "1e19",
    "True",
    "300MM",
    "1GiBB",
]


@pytest.mark.parametrize("text", REJECTED)
@pytest.mark.parametrize("parse", [parse_count, parse_size], ids=["count", "size"])
def test_rejects(parse, text):
    """Every bad budget is a BudgetError (a NasxError: one line, exit 2 in the CLI) naming the input."""
    with pytest.raises(BudgetError) as info:
        parse(text)
    assert repr(text) in str(info.value) or str(text) in str(info.value)


@pytest.mark.parametrize("text", ["80MB", "1GiB"])
def test_byte_sizes_are_not_counts(text):
    """A byte size is a MAC budget, not a compute budget: parse_count refuses it."""
    with pytest.raises(BudgetError):
        parse_count(text)


def test_messages_give_an_example():
    with pytest.raises(BudgetError, match="300M"):
        parse_count("300X")
    with pytest.raises(BudgetError, match="positive"):
        parse_count("0")
    with pytest.raises(BudgetError, match="80MB"):
        parse_size("lots")


@pytest.mark.parametrize("text", ["0", "0M", "-5M", "-0.5G", "0MB", "-5MB"])
def test_zero_and_negative_budgets_say_must_be_positive_for_compute_and_mac_alike(text):
    """--budget 0 and --mac-budget 0M are the same mistake: the same words, not "neither a count nor a size"."""
    parses = [parse_size] if text.endswith("B") else [parse_count, parse_size]
    for parse in parses:
        with pytest.raises(BudgetError, match=r"must be positive"):
            parse(text)
