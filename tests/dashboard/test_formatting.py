"""dashboard/formatting.py: one spelling of every time, size, ratio and name, for the pages and the terminal."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from torchscope.dashboard import formatting as f

MISSING = [None, float("nan"), np.float64("nan"), pd.NA]


@pytest.mark.parametrize("missing", MISSING)
def test_missing_values_print_as_a_dash(missing: object) -> None:
    assert f.is_missing(missing)
    for fmt in (f.fmt_time, f.fmt_duration, f.fmt_ns, f.fmt_ms, f.fmt_us, f.fmt_bytes, f.fmt_steps):
        assert fmt(missing) == "-"  # type: ignore[operator]
    assert f.fmt_pct(missing) == "new" and f.fmt_pct(missing, missing="-") == "-"  # type: ignore[arg-type]


def test_present_values_are_not_missing() -> None:
    assert not any(f.is_missing(v) for v in (0, 0.0, np.int64(3), "", "x", math.inf))


def test_fmt_time_is_local_wall_clock_to_the_second() -> None:
    ns = 1_700_000_000_123_456_789
    assert f.fmt_time(ns) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


@pytest.mark.parametrize(
    ("ns", "text"),
    [(3_725 * 10**9, "1h 02m"), (185 * 10**9, "3m 05s"), (4_200_000_000, "4.2s"), (15_000_000, "15ms"),
     (12_000, "12µs"), (0, "0µs")],
)  # fmt: skip
def test_fmt_duration_picks_a_coarse_unit(ns: int, text: str) -> None:
    assert f.fmt_duration(ns) == text


@pytest.mark.parametrize(
    ("ns", "signed", "text"),
    [(1_234_000, False, "1.234ms"), (311_000, True, "+311µs"), (-311_000, True, "-311µs"), (0, True, "0ns"),
     (2.5e9, False, "2.5s"), (999, False, "999ns")],
)  # fmt: skip
def test_fmt_ns_keeps_four_significant_digits(ns: float, signed: bool, text: str) -> None:
    assert f.fmt_ns(ns, signed) == text


def test_fmt_ms_and_fmt_us_fix_the_unit() -> None:
    assert f.fmt_ms(1_500_000) == "1.500 ms"
    assert f.fmt_ms(1_500_000, signed=True) == "+1.500 ms" and f.fmt_ms(-1_500_000, signed=True) == "-1.500 ms"
    assert f.fmt_ms(1_234_567, 6) == "1.234567 ms" and f.fmt_ms(1_500_000, unit=False) == "1.500"
    assert f.fmt_us(12_500) == "12.500 µs"
    assert f.fmt_us(1_234_500, 1, grouped=True) == "1,234.5 µs"
    assert f.fmt_us(1_234_500, 1, signed=True, grouped=True) == "+1,234.5 µs"


def test_fmt_bytes_in_a_fixed_binary_unit() -> None:
    assert f.fmt_bytes(3 * 2**19) == "1.500 MiB"
    assert f.fmt_bytes(2048, "KiB", 1) == "2.0 KiB" and f.fmt_bytes(2**30, "GiB") == "1.000 GiB"


def test_fmt_pct_signs_a_change() -> None:
    assert (f.fmt_pct(0.125), f.fmt_pct(-0.5), f.fmt_pct(0.0)) == ("+12.5%", "-50.0%", "+0.0%")


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (float("nan"), "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (0.123456, "0.1235"),
     (12345678.0, "1.235e+07"), (np.float32(2.5), "2.5"), (3, "3")],
)  # fmt: skip
def test_fmt_value_spells_non_finite_values(value: object, text: str) -> None:
    assert f.fmt_value(value) == text  # type: ignore[arg-type]


def test_fmt_value_can_print_nan_as_missing() -> None:
    assert f.fmt_value(float("nan"), nan="-") == "-" and f.fmt_value(1.0, nan="-") == "1"


def test_fmt_steps_counts_from_the_last_step() -> None:
    assert (f.fmt_steps(41), f.fmt_steps(41.0), f.fmt_steps(0)) == ("42", "42", "1")


def test_truncate_ends_a_cut_name_with_an_ellipsis() -> None:
    assert f.truncate("abcdef", 6) == "abcdef"
    assert f.truncate("abcdefg", 6) == "abcde…" and len(f.truncate("x" * 500, 90)) == 90
    assert f.truncate(None, 5) == ""


def test_short_name_drops_cpp_namespaces_but_not_aten() -> None:
    kernel = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>(int)"
    assert f.short_name(kernel, 200) == "vectorized_elementwise_kernel<4, FillFunctor<float>>(int)"
    assert f.short_name("aten::mm") == "aten::mm"
    assert f.short_name("k" * 70) == "k" * 59 + "…"


def test_chart_text_keeps_markup_in_a_name_literal_for_plotly() -> None:
    assert f.chart_text("<b>x</b> & <img src=x onerror=y>") == "&lt;b&gt;x&lt;/b&gt; &amp; &lt;img src=x onerror=y&gt;"
    assert f.chart_text("aten::mm") == "aten::mm"
