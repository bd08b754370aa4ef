"""Values <-> JSON payloads: the one way inputs and results cross a task boundary.

Every executor uses this layer, so a value that survives an in-process task survives a container
too. Plain JSON types pass through unchanged; everything else becomes a tagged object
``{"__cw__": "<tag>", ...}``. Decoding never imports a module and never unpickles, so a payload
read back from a container cannot run code in the caller.

Supported: None, bool, int, float (nan/inf too), str, list, tuple, dict (any JSON-able keys),
set/frozenset, bytes, datetime/date/time/timedelta, Decimal, UUID, paths, pydantic models, numpy
scalars and arrays, pandas DataFrame/Series/Index (columnar, dtypes kept). A pydantic model comes
back as its class only where the caller has already imported that class (and not from
`__main__`, which differs between processes); otherwise as a dict.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sys
import uuid
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from .errors import SerializationError

TAG = "__cw__"


def dumps(value: Any) -> str:
    """Encode a value to a JSON string."""
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes) -> Any:
    """Decode a JSON string made by `dumps`."""
    return decode(json.loads(text))


def encode(value: Any, where: str = "value") -> Any:
    """Turn `value` into a JSON-compatible tree. `where` names the value in errors."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and type(value) is int:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    if type(value) is list:
        return [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if type(value) is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {
            TAG: "dict",
            "items": [[encode(k, where), encode(v, f"{where}[{k!r}]")] for k, v in value.items()],
        }
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        return _encode_numpy(value, where)
    if module == "pandas":
        return _encode_pandas(value, where)
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, (set, frozenset)):
        tag = "set" if isinstance(value, set) else "frozenset"
        return {TAG: tag, "v": [encode(item, where) for item in value]}
    if isinstance(value, bytes):
        return {TAG: "bytes", "v": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {TAG: "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, PurePath):
        return {TAG: "path", "v": value.as_posix()}
    if _is_pydantic_model(value):
        cls = type(value)
        return {
            TAG: "pydantic",
            "cls": f"{cls.__module__}:{cls.__qualname__}",
            "v": encode(value.model_dump(mode="python"), where),
        }
    raise SerializationError(
        f"{where} of type {type(value).__module__}.{type(value).__qualname__} cannot cross a task "
        "boundary. Return or pass JSON types, datetime/Decimal/UUID, pydantic models, numpy or "
        "pandas values instead (see cowaitlib.serialization)."
    )


def decode(tree: Any) -> Any:
    """Inverse of `encode`."""
    if isinstance(tree, list):
        return [decode(item) for item in tree]
    if not isinstance(tree, dict):
        return tree
    tag = tree.get(TAG)
    if tag is None:
        return {k: decode(v) for k, v in tree.items()}
    try:
        decoder = _DECODERS[tag]
    except KeyError:
        raise SerializationError(
            f"unknown payload tag {tag!r}: was it made by a newer "
            "cowaitlib? Use the same version on both sides."
        ) from None
    return decoder(tree)


def _decode_pydantic(tree: dict[str, Any]) -> Any:
    # Look the class up only among modules the caller has already imported: importing a module
    # named by a payload would let the payload run code. Without the class, the data comes back
    # as a plain dict.
    data = decode(tree["v"])
    module_name, _, qualname = tree["cls"].partition(":")
    if module_name == "__main__":  # each process has its own __main__: not the same class
        return data
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and _is_pydantic_class(obj):
        return obj.model_validate(data)  # type: ignore[attr-defined]
    return data


_DECODERS: dict[str, Any] = {
    "float": lambda t: float(t["v"]),
    "dict": lambda t: {decode(k): decode(v) for k, v in t["items"]},
    "tuple": lambda t: tuple(decode(t["v"])),
    "set": lambda t: set(decode(t["v"])),
    "frozenset": lambda t: frozenset(decode(t["v"])),
    "bytes": lambda t: base64.b64decode(t["v"]),
    "datetime": lambda t: dt.datetime.fromisoformat(t["v"]),
    "date": lambda t: dt.date.fromisoformat(t["v"]),
    "time": lambda t: dt.time.fromisoformat(t["v"]),
    "timedelta": lambda t: dt.timedelta(*t["v"]),
    "decimal": lambda t: Decimal(t["v"]),
    "uuid": lambda t: uuid.UUID(t["v"]),
    "path": lambda t: Path(t["v"]),
    "pydantic": _decode_pydantic,
    "np.scalar": lambda t: _decode_np_scalar(t),
    "np.ndarray": lambda t: _decode_ndarray(t),
    "pd.Series": lambda t: _decode_series(t),
    "pd.DataFrame": lambda t: _decode_dataframe(t),
    "pd.Index": lambda t: _decode_index(t),
    "pd.Timestamp": lambda t: _pd().Timestamp(t["v"]),
    "pd.Timedelta": lambda t: _pd().Timedelta(t["v"]),
}


def _is_pydantic_model(value: Any) -> bool:
    return _is_pydantic_class(type(value))


def _is_pydantic_class(cls: type) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)


# --- numpy -------------------------------------------------------------------------------


def _np() -> Any:
    import numpy

    return numpy


def _encode_numpy(value: Any, where: str) -> Any:
    np = _np()
    if isinstance(value, np.ndarray):
        return _encode_ndarray(value, where)
    if isinstance(value, np.generic):
        if value.dtype.kind == "O":
            raise SerializationError(f"{where}: numpy object scalars cannot cross a task boundary")
        return {
            TAG: "np.scalar",
            "dtype": value.dtype.str,
            "data": base64.b64encode(value.tobytes()).decode(),
        }
    raise SerializationError(f"{where} of type numpy.{type(value).__qualname__} is not supported")


def _encode_ndarray(array: Any, where: str) -> dict[str, Any]:
    np = _np()
    if array.dtype.kind == "O":
        return {
            TAG: "np.ndarray",
            "dtype": "object",
            "shape": list(array.shape),
            "items": [encode(item, where) for item in array.ravel().tolist()],
        }
    if array.dtype.fields is not None:
        raise SerializationError(f"{where}: structured numpy arrays are not supported")
    data = np.ascontiguousarray(array).tobytes()
    return {
        TAG: "np.ndarray",
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "data": base64.b64encode(data).decode(),
    }


def _decode_ndarray(tree: dict[str, Any]) -> Any:
    np = _np()
    shape = tuple(tree["shape"])
    if tree["dtype"] == "object":
        array = np.empty(len(tree["items"]), dtype=object)
        array[:] = [decode(item) for item in tree["items"]]
        return array.reshape(shape)
    raw = base64.b64decode(tree["data"])
    return np.frombuffer(raw, dtype=np.dtype(tree["dtype"])).reshape(shape).copy()


def _decode_np_scalar(tree: dict[str, Any]) -> Any:
    np = _np()
    return np.frombuffer(base64.b64decode(tree["data"]), dtype=np.dtype(tree["dtype"]))[0]


# --- pandas ------------------------------------------------------------------------------


def _pd() -> Any:
    import pandas

    return pandas


def _encode_pandas(value: Any, where: str) -> Any:
    pd = _pd()
    if isinstance(value, pd.DataFrame):
        if isinstance(value.columns, pd.MultiIndex):
            raise SerializationError(
                f"{where}: DataFrames with MultiIndex columns are not "
                "supported; flatten the columns first"
            )
        return {
            TAG: "pd.DataFrame",
            "columns_index": _encode_index(value.columns, where),
            "data": [
                _encode_values(value.iloc[:, i], f"{where}[{c!r}]")
                for i, c in enumerate(value.columns)
            ],
            "index": _encode_index(value.index, where),
        }
    if isinstance(value, pd.Series):
        return {
            TAG: "pd.Series",
            "name": encode(value.name, where),
            "data": _encode_values(value, where),
            "index": _encode_index(value.index, where),
        }
    if isinstance(value, pd.Index):
        return _encode_index(value, where)
    if isinstance(value, pd.Timestamp):
        return {TAG: "pd.Timestamp", "v": value.isoformat()}
    if isinstance(value, pd.Timedelta):
        return {TAG: "pd.Timedelta", "v": value.isoformat()}
    raise SerializationError(f"{where} of type pandas.{type(value).__qualname__} is not supported")


def _encode_values(values: Any, where: str) -> dict[str, Any]:
    """One column: its dtype by name plus its data, the data as raw bytes where possible."""
    pd = _pd()
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return {
            "dtype": "category",
            "ordered": bool(dtype.ordered),
            "categories": _encode_index(dtype.categories, where),
            "codes": _encode_ndarray(values.cat.codes.to_numpy(), where),
        }
    if isinstance(dtype, _np().dtype) and dtype.kind in "biufcmM":
        return {"dtype": str(dtype), "array": _encode_ndarray(values.to_numpy(), where)}
    # Extension and object dtypes (strings, nullable ints, tz-aware datetimes, ...): by item.
    items = [None if _is_missing(v) else v for v in values.tolist()]
    return {"dtype": str(dtype), "items": [encode(v, where) for v in items]}


def _is_missing(value: Any) -> bool:
    pd = _pd()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _decode_values(tree: dict[str, Any]) -> Any:
    """Back to an array-like that pandas accepts, with the original dtype."""
    pd = _pd()
    if tree["dtype"] == "category":
        categories = _decode_index(tree["categories"])
        codes = _decode_ndarray(tree["codes"])
        return pd.Categorical.from_codes(codes, categories=categories, ordered=tree["ordered"])
    if "array" in tree:
        return _decode_ndarray(tree["array"])
    return pd.array([decode(v) for v in tree["items"]], dtype=tree["dtype"])


def _encode_index(index: Any, where: str) -> dict[str, Any]:
    pd = _pd()
    if isinstance(index, pd.RangeIndex):
        return {
            TAG: "pd.Index",
            "range": [index.start, index.stop, index.step],
            "name": encode(index.name, where),
        }
    if isinstance(index, pd.MultiIndex):
        return {
            TAG: "pd.Index",
            "levels": [
                _encode_index(index.get_level_values(i), where) for i in range(index.nlevels)
            ],
            "names": [encode(n, where) for n in index.names],
        }
    tree = {
        TAG: "pd.Index",
        "values": _encode_values(pd.Series(index), where),
        "name": encode(index.name, where),
    }
    if getattr(index, "freqstr", None):
        tree["freq"] = index.freqstr
    return tree


def _decode_index(tree: dict[str, Any]) -> Any:
    pd = _pd()
    if "range" in tree:
        return pd.RangeIndex(*tree["range"], name=decode(tree["name"]))
    if "levels" in tree:
        levels = [_decode_index(level) for level in tree["levels"]]
        return pd.MultiIndex.from_arrays(levels, names=decode(tree["names"]))
    index = pd.Index(_decode_values(tree["values"]), name=decode(tree["name"]))
    if "freq" in tree:
        index = type(index)(index, freq=tree["freq"])
    return index


def _decode_series(tree: dict[str, Any]) -> Any:
    pd = _pd()
    return pd.Series(
        _decode_values(tree["data"]),
        index=_decode_index(tree["index"]),
        name=decode(tree["name"]),
        copy=False,
    )


def _decode_dataframe(tree: dict[str, Any]) -> Any:
    pd = _pd()
    columns = _decode_index(tree["columns_index"])
    data = {i: _decode_values(col) for i, col in enumerate(tree["data"])}
    frame = pd.DataFrame(data, index=_decode_index(tree["index"]), copy=False)
    frame.columns = columns
    return frame
