"""Property-based test of ``run.log`` over odd values and tags: it never raises, valid numbers round-trip exactly
(NaN as NaN, ±Inf as ±Inf), and everything else is dropped, counted in ``run.dropped`` and warned about by tag.

Hypothesis runs derandomized with no example database, so CI sees the same inputs on every run; set
``TORCHSCOPE_FUZZ_EXAMPLES=2000`` for a deeper random hunt.
"""

from __future__ import annotations

import enum
import itertools
import math
import os
import sys
import warnings
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchscope
from torchscope.errors import TorchscopeWarning

_DEEP = int(os.environ.get("TORCHSCOPE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_DEEP or 150, deadline=None, derandomize=not _DEEP, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
FLOAT_MAX_INT = int(sys.float_info.max)


class Colour(str, enum.Enum):
    RED = "red"


VALUES = st.one_of(
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e300, -1e300, 5e-324]),
    st.integers(-(2**1100), 2**1100), st.sampled_from([2**70, FLOAT_MAX_INT, FLOAT_MAX_INT + 2**971]), st.booleans(),
    st.floats(width=32).map(np.float32), st.integers(-(2**63), 2**63 - 1).map(np.int64), st.booleans().map(np.bool_),
    st.floats().map(lambda v: np.array(v)), st.floats(width=32).map(lambda v: torch.tensor(v)),
    st.floats().map(lambda v: torch.tensor([v], dtype=torch.float64)), st.integers(-100, 100).map(torch.tensor),
    st.just(torch.tensor(True)), st.just(torch.tensor([1.0, 2.0])), st.just(torch.tensor(1 + 2j)),
    st.just(np.array([1.0, 2.0])), st.text(max_size=4), st.just("1.5"), st.none(), st.lists(st.floats(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1), st.just(1 + 2j), st.just(b"1"),
)  # fmt: skip
TAGS = st.one_of(
    st.text(max_size=12), st.just(""), st.just("t" * 5000), st.just("a\x00b"), st.just("bad\ud800"),
    st.just(Colour.RED), st.integers(-3, 3), st.just(None), st.just(("a", 1)), st.just(1.5), st.just(b"loss"),
)  # fmt: skip


def expected_value(value: Any) -> float | None:
    """What the store should read back for a logged value: a float, or None when it must be dropped."""
    if isinstance(value, torch.Tensor):
        ok = value.numel() == 1 and not value.is_complex()
        return float(value.item()) if ok else None
    if isinstance(value, np.ndarray):
        return float(value.item()) if value.size == 1 else None
    if isinstance(value, (bool, np.bool_, np.floating, np.integer, float)):
        return float(value)
    if type(value) is int:
        return float(value) if abs(value) <= FLOAT_MAX_INT else None
    return None


def expected_tag(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None
    name = str.__str__(tag)
    if not name or "\x00" in name or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        return None
    return name


def test_run_log_keeps_valid_numbers_exactly_and_drops_the_rest_with_a_warning(db_path):
    run = torchscope.init("fuzz", db=db_path, system_metrics=False)
    steps = itertools.count()
    caught: list[warnings.WarningMessage] = []
    bad_tags: set[str] = set()

    @FUZZ
    @given(data=st.dictionaries(TAGS, VALUES, max_size=5))
    def check(data: dict[Any, Any]) -> None:
        step = next(steps)
        expected = {}
        dropped = 0
        for tag, value in data.items():
            name, number = expected_tag(tag), expected_value(value)
            if name is None or number is None:
                dropped += 1
                if name is not None:
                    bad_tags.add(name)
            else:
                expected[name] = number
        before = run.dropped
        with warnings.catch_warnings(record=True) as new:
            warnings.simplefilter("always", TorchscopeWarning)
            run.log(data, step=step)
        caught.extend(new)
        assert run.dropped - before == dropped
        assert run.flush()
        with torchscope.open(db_path) as store:
            rows = store.scalars(run.id)
        rows = rows[rows["step"] == step]
        got = dict(zip(rows["tag"], rows["value"]))
        assert got.keys() == expected.keys()
        for name, number in expected.items():
            assert (math.isnan(got[name]) and math.isnan(number)) or got[name] == number, (name, got[name], number)

    check()
    run.finish()
    assert all(w.filename == __file__ for w in caught)
    messages = " ".join(str(w.message) for w in caught)
    assert all(repr(name)[:60] in messages for name in bad_tags)  # each bad value is warned about by its tag
    with torchscope.open(db_path) as store:
        assert store.run(run.id)["dropped"] == run.dropped


def test_a_bad_step_or_a_non_dict_is_dropped_with_a_warning(run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TorchscopeWarning)
        run.log({"a": 1.0, "b": 2.0}, step=1.5)
        run.log({"a": 1.0}, step=-(2**63))
        run.log([("a", 1.0)])
        run.log({"a": 1.0}, step=np.int64(4))
    assert run.dropped == 4
    assert [str(w.message).split(";")[0] for w in caught] == [
        "torchscope: run.log got step=1.5",
        "torchscope: run.log takes a dict {tag: number}, got list",
    ]
    run.flush()
    with torchscope.open(run.url) as store:
        assert store.scalars(run.id)[["step", "tag", "value"]].values.tolist() == [[4, "a", 1.0]]
