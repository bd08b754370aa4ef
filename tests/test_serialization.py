"""Values crossing a task boundary: round trips, dtypes kept, clear errors, never code."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from cowaitlib import SerializationError
from cowaitlib.serialization import dumps, loads


class Point(BaseModel):
    x: int
    label: str = "p"


ROUND_TRIPS: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    "text ✓",
    [1, "a", None],
    {"a": 1, "nested": {"b": [1, 2]}},
    {1: "int key", (1, 2): "tuple key"},
    {"__cw__": "a user key that looks like our tag"},
    (1, "two", 3.0),
    {1, 2, 3},
    frozenset({"a"}),
    b"\x00\xffbytes",
    dt.datetime(2021, 1, 1, 12, 30, tzinfo=dt.timezone.utc),
    dt.datetime(2021, 1, 1, 12, 30),
    dt.date(2021, 1, 1),
    dt.time(12, 30, 5),
    dt.timedelta(days=2, seconds=5, microseconds=7),
    Decimal("1.10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Point(x=3),
    Path("/data/2020/01.csv"),
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_round_trip_keeps_value_and_type(value: Any) -> None:
    back = loads(dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_payload_is_plain_json() -> None:
    text = dumps({"when": dt.date(2021, 1, 1), "arr": np.arange(3)})
    assert isinstance(json.loads(text), dict)


def test_non_finite_floats() -> None:
    back = loads(dumps([math.inf, -math.inf, math.nan]))
    assert back[0] == math.inf and back[1] == -math.inf and math.isnan(back[2])


@pytest.mark.parametrize(
    "value",
    [np.int8(-3), np.uint64(2**63), np.float32(1.25), np.bool_(True), np.datetime64("2021-01-01")],
    ids=lambda v: type(v).__name__,
)
def test_numpy_scalars_keep_dtype(value: Any) -> None:
    back = loads(dumps(value))
    assert back == value and back.dtype == value.dtype


def test_numpy_arrays_keep_dtype_and_shape() -> None:
    for array in [
        np.arange(12, dtype=">i4").reshape(3, 4),
        np.linspace(0, 1, 5),
        np.array(["a", "bc"]),
    ]:
        back = loads(dumps(array))
        np.testing.assert_array_equal(back, array)
        assert back.dtype == array.dtype and back.shape == array.shape
    transposed = np.arange(6).reshape(2, 3).T  # not C-contiguous
    np.testing.assert_array_equal(loads(dumps(transposed)), transposed)


def test_dataframe_round_trip_keeps_every_dtype() -> None:
    frame = pd.DataFrame(
        {
            "int": [1, 2, 3],
            "int8": np.array([1, 2, 3], dtype="int8"),
            "float": [1.5, np.nan, 3.0],
            "str": ["x", None, "z"],
            "category": pd.Categorical(["u", "v", "u"], ordered=True),
            "when": pd.to_datetime(["2021-01-01", "2021-01-02", None]),
            "when_utc": pd.to_datetime(["2021-01-01", "2021-01-02", "2021-01-03"]).tz_localize(
                "UTC"
            ),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "bool": [True, False, True],
            "delta": pd.to_timedelta([1, 2, 3], unit="s"),
            7: [1, 2, 3],  # a non-string column name
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    back = loads(dumps(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert list(back.dtypes) == list(frame.dtypes)


def test_series_and_index_round_trips() -> None:
    series = pd.Series([1.0, 2.0], name="volume", index=pd.date_range("2021-01-01", periods=2))
    pd.testing.assert_series_equal(loads(dumps(series)), series)
    multi = pd.DataFrame(
        {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    )
    pd.testing.assert_frame_equal(loads(dumps(multi)), multi)
    assert loads(dumps(pd.Timestamp("2021-01-01", tz="UTC"))) == pd.Timestamp(
        "2021-01-01", tz="UTC"
    )


def test_unsupported_type_names_the_type_and_where() -> None:
    class Opaque:
        pass

    with pytest.raises(SerializationError, match=r"value\['bad'\] of type .*Opaque"):
        dumps({"bad": Opaque()})
    with pytest.raises(SerializationError, match=r"of type builtins.function"):
        dumps(lambda: 1)


def test_decoding_never_imports_a_module() -> None:
    import sys

    payload = dumps(Point(x=1)).replace(f"{Point.__module__}:Point", "os_not_imported_xyz:Evil")
    assert loads(payload) == {"x": 1, "label": "p"}  # plain data, no import attempted
    assert "os_not_imported_xyz" not in sys.modules


def test_unknown_tag_is_a_clear_error() -> None:
    with pytest.raises(SerializationError, match="unknown payload tag 'pickle'"):
        loads('{"__cw__": "pickle", "v": "gASV"}')


def test_pydantic_models_from_main_come_back_as_data() -> None:
    payload = dumps(Point(x=1)).replace(f"{Point.__module__}:Point", "__main__:Point")
    assert loads(payload) == {"x": 1, "label": "p"}
