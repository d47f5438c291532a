"""JSON on the hot paths (Ongoing and Shopify answers and request bodies, log lines, JSON
columns, webhook bodies): orjson where it gives what the stdlib's json gives, the stdlib's json
for the rest of the documents.

orjson decodes a large Ongoing GET /orders answer in ~60% of the stdlib's CPU (bench/
json_decode.py) and encodes a GraphQL request body in a quarter, but it differs from the
stdlib on a few documents, and those go through the stdlib, so every caller sees what it saw
before:

- decoding: orjson refuses what the stdlib accepts (NaN, Infinity, 1e400, a UTF-8 BOM in bytes,
  UTF-16/32 bytes, lone surrogates, very deep nesting): the stdlib decodes it, or raises as it
  did. And orjson silently turns an integer beyond 64 bits into a float: a document with a run
  of 19 or more digits anywhere (every such integer has one) is decoded by the stdlib.
- encoding: orjson writes NaN and Infinity as null (the stdlib refuses them, or writes NaN):
  a document whose encoding holds a null and that holds a NaN or an Infinity is encoded by the
  stdlib. So is one orjson refuses (non-str keys, integers beyond 64 bits, lone surrogates,
  str/int/dict/list subclasses, dates and dataclasses, passed through to its error here), and
  one with non-ASCII characters where the caller wants ASCII (ensure_ascii). The output is
  always compact (separators "," and ":"). Left different: a small exponent's spelling (orjson
  1e-7, the stdlib 1e-07: the same number), and orjson writes a UUID or a plain Enum by value
  (the stdlib refuses them); no document of ours holds one.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import orjson

__all__ = ["dumps", "dumps_text", "loads"]

_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))  # digit -> "0", else " "
_LONG_NUMBER = b"0" * 19  # |n| < 2**63 has at most 19 digits; any integer beyond has 19 or more
_PASS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | \
    orjson.OPT_PASSTHROUGH_DATACLASS


def loads(data: bytes | str):
    """json.loads(data), in about half the CPU on a large document."""
    raw = data
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError:  # lone surrogates: orjson refuses them, the stdlib not
            return json.loads(data)
    if _LONG_NUMBER in raw.translate(_DIGITS):  # maybe an integer orjson would make a float
        return json.loads(data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(data)  # decodes what orjson refuses, or raises as it always did


def dumps(obj, *, ensure_ascii: bool = False, allow_nan: bool = False,
          default: Callable | None = None) -> bytes:
    """json.dumps(obj, ensure_ascii=…, allow_nan=…, default=…, separators=(",", ":")) as UTF-8."""
    out = _orjson(obj, ensure_ascii)
    if out is None:
        return _stdlib(obj, ensure_ascii, allow_nan, default).encode()
    return out


def dumps_text(obj, *, ensure_ascii: bool = False, allow_nan: bool = False,
               default: Callable | None = None) -> str:
    """`dumps` as str."""
    out = _orjson(obj, ensure_ascii)
    if out is None:
        return _stdlib(obj, ensure_ascii, allow_nan, default)
    return out.decode()


def _orjson(obj, ensure_ascii: bool) -> bytes | None:
    """orjson's encoding when it is the stdlib's (up to a float's spelling), else None."""
    try:
        out = orjson.dumps(obj, option=_PASS)
    except orjson.JSONEncodeError:
        return None
    if ensure_ascii and not out.isascii():
        return None
    if b"null" in out and not _finite(obj):  # a null may have been a NaN or an Infinity
        return None
    return out


def _finite(obj) -> bool:
    """No NaN or Infinity anywhere in `obj` (what orjson would have written as null)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, float):
            if value - value != 0:  # NaN and ±Infinity alone
                return False
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return True


def _stdlib(obj, ensure_ascii: bool, allow_nan: bool, default: Callable | None) -> str:
    return json.dumps(obj, ensure_ascii=ensure_ascii, allow_nan=allow_nan, default=default,
                      separators=(",", ":"))
