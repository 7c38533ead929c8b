"""Decoders for samples: ``decode="numpy"`` and the helpers it uses.

A sample's members are read-only memoryviews. ``decode_numpy`` turns, by the last part of the
extension (``seg.npy`` counts as ``npy``):

- ``npy``  -> a read-only ``numpy.ndarray`` over the member's bytes (no copy) when the dtype has
  no Python objects; others are refused (``allow_pickle`` is never used);
- ``json`` -> the decoded object;
- ``txt``  -> ``str`` (UTF-8);
- ``cls``  -> ``int``;

and leaves every other member as it is. numpy is imported the first time an ``npy`` member is
decoded, never before.
"""

from __future__ import annotations

import ast
import json
from typing import Any, Callable, Dict, Union

_NPY_MAGIC = b"\x93NUMPY"


def _npy_array(view: memoryview, where: str) -> Any:
    """A read-only ndarray over the .npy bytes in ``view`` (no copy)."""
    import numpy

    data = view.cast("B") if view.format != "B" else view
    if bytes(data[:6]) != _NPY_MAGIC or len(data) < 10:
        raise ValueError(f"{where} is not a .npy file (no \\x93NUMPY magic); decode it with a callable instead")
    major = data[6]
    if major == 1:
        header_length = int.from_bytes(data[8:10], "little")
        header_start = 10
    elif major in (2, 3):
        header_length = int.from_bytes(data[8:12], "little")
        header_start = 12
    else:
        raise ValueError(f"{where} is a .npy file of format version {major}, which numpy.lib.format does not read")
    encoding = "utf-8" if major == 3 else "latin1"
    header = bytes(data[header_start : header_start + header_length]).decode(encoding)
    try:
        fields = ast.literal_eval(header)
        descr, fortran_order, shape = fields["descr"], fields["fortran_order"], tuple(fields["shape"])
    except (SyntaxError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{where} has a .npy header that cannot be parsed ({error}): {header.strip()!r}") from None
    dtype = numpy.lib.format.descr_to_dtype(descr)
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects (dtype {dtype}), which are not decoded (no pickle)")
    count = 1
    for extent in shape:
        count *= extent
    offset = header_start + header_length
    needed = offset + count * dtype.itemsize
    if len(data) < needed:
        raise ValueError(f"{where} is a truncated .npy: {len(data)} bytes, the header needs {needed}")
    array = numpy.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran_order else "C")


def _where(sample: Dict[str, Any], ext: str) -> str:
    return f"member {ext!r} of sample {sample.get('__key__')!r} (position {sample.get('__index__')})"


def decode_value(sample: Dict[str, Any], ext: str, value: Any) -> Any:
    """Decodes one member of ``sample`` by its extension; returns other values unchanged."""
    if not isinstance(value, memoryview):
        return value
    kind = ext.rsplit(".", 1)[-1]
    if kind == "npy":
        return _npy_array(value, _where(sample, ext))
    if kind == "json":
        return json.loads(bytes(value))
    if kind == "txt":
        return str(value, "utf-8")
    if kind == "cls":
        return int(bytes(value).strip())
    return value


def decode_numpy(sample: Dict[str, Any]) -> Dict[str, Any]:
    """``decode="numpy"``: a new sample dict with npy, json, txt and cls members decoded."""
    return {ext: (value if ext.startswith("__") else decode_value(sample, ext, value)) for ext, value in sample.items()}


Decoder = Union[None, str, Callable[[Dict[str, Any]], Any]]

_NAMED: Dict[str, Callable[[Dict[str, Any]], Any]] = {"numpy": decode_numpy}


def resolve_decoder(decode: Decoder) -> Union[None, Callable[[Dict[str, Any]], Any]]:
    """The callable for ``decode`` (None, "numpy" or a callable)."""
    if decode is None:
        return None
    if isinstance(decode, str):
        try:
            return _NAMED[decode]
        except KeyError:
            names = ", ".join(repr(name) for name in _NAMED)
            raise ValueError(f"unknown decode {decode!r}; use None, {names} or a callable") from None
    if callable(decode):
        return decode
    raise TypeError(f"decode must be None, 'numpy' or a callable, not {type(decode).__name__}")
