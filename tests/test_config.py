"""The config loader's converters: properties of sizes and durations."""
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from strongroom.config import converters as conv

# -- properties of sizes and durations ---------------------------------------------

SIZE_UNITS = {"": 1, "B": 1, "k": 1024, "KiB": 1024, "kB": 1000, "MiB": 1024**2, "MB": 1000**2,
              "G": 1024**3, "GiB": 1024**3, "GB": 1000**3, "TiB": 1024**4, "TB": 1000**4}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
spacing = st.sampled_from(["", " "])
decimals = st.tuples(st.integers(0, 10**6), st.text("0123456789", min_size=1, max_size=6))


@given(st.integers(0, 2**40), st.sampled_from(sorted(SIZE_UNITS)), spacing)
def test_a_size_written_in_a_unit_reads_back_as_its_bytes(n, unit, space):
    written, size = f"{n}{space}{unit}", n * SIZE_UNITS[unit]
    if size > 2**63 - 1:      # more than a BIGINT column holds
        for value in (written, size):
            with pytest.raises(ValueError, match="at most"):
                conv.size(value)
        return
    assert conv.size(written) == size
    assert conv.size(written.upper() if unit else written) == size
    assert conv.size(size) == size


@given(decimals, st.sampled_from([u for u in SIZE_UNITS if len(u) > 1]))
def test_a_decimal_size_is_exact(number, unit):
    """'4.35MB' is 4350000 bytes, not 4349999 (a float's product rounded down)."""
    text = f"{number[0]}.{number[1]}"
    exact = int(Fraction(text) * SIZE_UNITS[unit])
    assert conv.size(text + unit) == exact
    assert conv.size_with_unit(text + unit) == exact


@given(st.text("0123456789", min_size=300, max_size=400), st.sampled_from(["GiB", "TB", ""]))
def test_a_huge_size_is_a_value_error(digits, unit):
    """Never an OverflowError (a traceback instead of one line naming the option)."""
    for convert in (conv.size, conv.size_with_unit, conv.positive_size, conv.size_or_percent):
        try:
            assert convert(digits + (unit or "B")) is not None
        except ValueError:
            pass


@given(st.integers(0, 10**9), st.sampled_from(sorted(DURATION_UNITS)), spacing)
def test_a_duration_written_in_a_unit_reads_back_as_its_seconds(n, unit, space):
    seconds = n * DURATION_UNITS[unit]
    assert conv.duration(f"{n}{space}{unit}") == seconds
    assert conv.duration(seconds) == seconds
    if unit and n:
        assert conv.duration_with_unit(f"{n}{space}{unit}") == seconds
        assert conv.positive_duration(f"{n}{unit}") == seconds


@pytest.mark.parametrize("value", [float("inf"), "9" * 400 + "s", "9" * 400])
def test_an_endless_duration_is_refused(value):
    for convert in (conv.duration, conv.positive_duration, conv.duration_with_unit):
        with pytest.raises(ValueError):
            convert(value)
