"""Property-based fuzz of the user-facing parsers: every input either parses or raises nasx's own
error type (which the CLI prints as one line), never anything else."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import nasx
from nasx.errors import NasxError
from nasx.space.config import parse_space
from nasx.util.units import parse_count, parse_size

budget_like = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[-+]?\d{0,4}(\.\d{0,3})?([eE][-+]?\d{1,4})?\s?[kKmMgGtTbBiIxX]{0,3}\Z"),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(budget_like)
def test_budget_parser_parses_or_raises_budget_error(text):
    try:
        n = parse_count(text)
    except nasx.BudgetError:
        return
    assert isinstance(n, int) and n > 0


@settings(max_examples=300, deadline=None)
@given(budget_like)
def test_size_parser_parses_or_raises_budget_error(text):
    try:
        n, unit = parse_size(text)
    except nasx.BudgetError:
        return
    assert n > 0 and unit in ("elements", "bytes")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "input", "classes", "act", "stem", "stages", "head", "families", "bogus"]),
        json_values,
        max_size=8,
    )
)
def test_space_parser_parses_or_raises_config_error(d):
    try:
        parse_space(json.dumps(d), "fuzz.yaml")  # JSON is YAML
    except nasx.ConfigError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_space_parser_on_arbitrary_text(text):
    try:
        parse_space(text, "fuzz.yaml")
    except NasxError:
        pass


def test_absurd_network_is_refused_at_build_unless_forced():
    layers = tuple(nasx.ops.Conv2d(out=60000, kernel=7) for _ in range(2))
    arch = nasx.Arch(input=(3, 8, 8), layers=layers)
    try:
        nasx.build(arch)
    except nasx.ArchError as e:
        assert "pass force" in str(e)
    else:
        raise AssertionError("a 176-billion-parameter network was built")
