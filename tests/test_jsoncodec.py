"""jsoncodec gives what the stdlib's json gives: the same values decoded, the same errors, and
an encoding the stdlib reads back as the same document (or the stdlib's own error)."""
from __future__ import annotations

import io
import json
import logging
import math
from datetime import UTC, datetime
from enum import StrEnum

import pytest

import jsoncodec
import logs

DECODED_ALIKE = [
    b'{"a":1,"b":[1.5,-0.0,1E2,true,false,null],"c":"\\u00e5\\ud83d\\ude00"}',
    b'{"a":1,"a":2}', b' \t\r\n1 ', b'9007199254740993', b'18446744073709551615',
    b'-9223372036854775808', b'5e-324', b'1.000000000000000000000000001', b'"\\u0000"',
    # what orjson refuses and the stdlib accepts
    b'NaN', b'[Infinity,-Infinity]', b'1e400', b'"\\ud800"', b'"\xed\xa0\x80"',
    b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16"), '"\ud800"',
    # integers beyond 64 bits: orjson would make them floats
    b'{"orderId":123456789012345678901234567890}', b'[-9223372036854775809]',
    b'{"n":18446744073709551616}', '{"n":-99999999999999999999}',
    b'{"id":"a digit run 12345678901234567890 in a string"}',
]
REFUSED_ALIKE = [b"", b"[1,]", b"01", b'"\xff"', b'"\xc0\x80"', b"\x0c1", b'{"a":1}\x00',
                 '\ufeff{"a":1}', b'"a\x00"']


@pytest.mark.parametrize("data", DECODED_ALIKE)
def test_loads_decodes_what_the_stdlib_decodes_to_the_same_values(data):
    expected, found = json.loads(data), jsoncodec.loads(data)
    assert repr(found) == repr(expected)  # repr: NaN, -0.0 and int-vs-float told apart


def test_an_integer_beyond_64_bits_stays_an_integer():
    found = jsoncodec.loads(b'[{"orderId": 123456789012345678901234567890}, 1]')
    assert found == [{"orderId": 123456789012345678901234567890}, 1]
    assert type(found[0]["orderId"]) is int


@pytest.mark.parametrize("data", REFUSED_ALIKE)
def test_loads_refuses_what_the_stdlib_refuses_with_its_error(data):
    with pytest.raises(ValueError) as stdlib:
        json.loads(data)
    with pytest.raises(type(stdlib.value)):
        jsoncodec.loads(data)


def test_very_deep_nesting_fails_as_the_stdlib_does():
    with pytest.raises(RecursionError):
        jsoncodec.loads(b"[" * 100_000 + b"]" * 100_000)


class Colour(StrEnum):
    RED = "red"


class Text(str):
    pass


ENCODED_ALIKE = [
    {"query": "query { shop { name } }", "variables": {"id": "gid://shopify/Order/1", "n": 3}},
    {"name": "Åsa – blå", "emoji": "😀", "list": [1, 2.5, -0.0, True, False], "t": (1, 2)},
    {"none": None, "big": 2**64, "neg": -2**63 - 1, 1: "int key"},
    {"subclass": Text("x"), Text("k"): Colour.RED},
]


@pytest.mark.parametrize("value", ENCODED_ALIKE)
@pytest.mark.parametrize("ascii_only", [False, True])
def test_dumps_encodes_what_the_stdlib_reads_back_alike(value, ascii_only):
    found = jsoncodec.dumps(value, ensure_ascii=ascii_only)
    expected = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"), allow_nan=False)
    assert json.loads(found) == json.loads(expected)
    assert found.isascii() or not ascii_only
    assert jsoncodec.dumps_text(value, ensure_ascii=ascii_only) == found.decode()


class Real(float):
    pass


@pytest.mark.parametrize("value", [float("nan"), [math.inf], {"a": -math.inf},
                                   {"none": None, "deep": [1.5, ({"x": math.nan},)]},
                                   [None, Real("inf")]])
def test_nan_is_refused_or_written_as_the_stdlib_does_never_as_null(value):
    with pytest.raises(ValueError):
        jsoncodec.dumps(value)
    assert jsoncodec.dumps_text(value, allow_nan=True) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", [{"when": datetime(2026, 1, 1, tzinfo=UTC)}, {"s": {1, 2}}])
def test_what_json_cannot_encode_goes_to_default_or_fails_as_before(value):
    with pytest.raises(TypeError):
        jsoncodec.dumps(value)
    assert jsoncodec.dumps_text(value, default=str) == \
        json.dumps(value, default=str, separators=(",", ":"))


def test_a_lone_surrogate_fails_to_encode_as_utf8_as_before():
    with pytest.raises(UnicodeEncodeError):
        jsoncodec.dumps({"a": "\ud800"})
    assert jsoncodec.dumps({"a": "\ud800"}, ensure_ascii=True) == b'{"a":"\\ud800"}'


def test_a_log_line_stays_ascii_json_and_keeps_a_nan():
    stream, logger = io.StringIO(), logging.getLogger("swapline.test.jsoncodec")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger.addHandler(handler)
    try:
        with logs.context(shop="blå.myshopify.com", exchange_id=7):
            logger.warning("Ongoing said: %s", "Ordern är låst…")
            logger.warning("took %s", float("nan"), extra={"topic": math.nan})
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first.isascii() and "\\u00e5" in first
    assert json.loads(first)["msg"] == "Ongoing said: Ordern är låst…"
    assert json.loads(first)["shop"] == "blå.myshopify.com"
    assert math.isnan(json.loads(second)["topic"])  # NaN, as json.dumps wrote it, not null


def test_json_columns_are_written_and_read_as_the_stdlib_did(app):
    from sqlalchemy import JSON, Column, MetaData, Table, select

    from models import db

    table = Table("json_probe", MetaData(), Column("v", JSON), prefixes=["TEMPORARY"])
    value = [{"title": "Tröja – blå", "id": 2**70, "variant": None, "n": 1, "half": 0.5}]
    with db.transaction() as connection:
        table.create(connection)
        connection.execute(table.insert(), {"v": value})
        stored = connection.exec_driver_sql("SELECT v::text FROM json_probe").scalar()
        found = connection.execute(select(table.c.v)).scalar()
    assert stored.isascii() and json.loads(stored) == value  # ASCII, as json.dumps wrote it
    assert found == value and type(found[0]["id"]) is int
    assert db.engine().dialect._json_deserializer is jsoncodec.loads  # orjson's way, not json's
