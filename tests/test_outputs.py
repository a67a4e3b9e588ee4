"""Output files: indented JSON is written as ``json.dumps(..., indent=2)`` writes it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dsguard.outputs import _default, write_json


class _Verdict(StrEnum):
    SPOOF = "spoof"


class _Model(BaseModel):
    at: datetime
    name: str


@dataclass
class _Row:
    sender: str


def _as_json_writes(value: Any) -> str:
    """What ``write_json`` wrote before it used orjson."""
    return json.dumps(value, ensure_ascii=False, default=_default, indent=2) + "\n"


def test_indented_json_is_byte_for_byte_what_json_writes(tmp_path: Path) -> None:
    value = {
        "aware": datetime(2026, 11, 30, 23, 59, 59, 123456, tzinfo=UTC),
        "offset": datetime(2026, 11, 30, 8, 0, tzinfo=timezone(timedelta(hours=-5))),
        "naive": datetime(2026, 11, 30, 8, 0),
        "day": date(2026, 11, 30),
        "clock": time(8, 30),
        "model": _Model(at=datetime(2026, 1, 2, tzinfo=UTC), name="fax"),
        "dataclass": _Row("ceo@contoso.example"),
        "path": Path("exports/alerts.csv"),
        "decimal": Decimal("1.50"),
        "enum": _Verdict.SPOOF,
        "tuple": (1, "two", None, True, False),
        "empties": [{}, [], "", 0],
        "hostile": "Réception \u202e=cmd|' /C calc'!A0 \x00\x1b[31m\r\n\t\"\\ \U0001f4e0 </script>",
        "numbers": [0.1, 1e21, -0.0, 2**64 - 1, -(2**63), 123456789.125, 1e300],
        "keys": {7: "int", 2.5: "float", True: "bool", None: "none"},
        "nested": {"a": [{"b": [[], [{}]]}]},
    }
    out = write_json(tmp_path / "doc.json", value)
    assert out.read_bytes().decode("utf-8") == _as_json_writes(value)


def test_small_floats_keep_their_value_if_not_their_spelling(tmp_path: Path) -> None:
    """orjson writes ``1e-7`` where ``json`` writes ``1e-07``: the same number."""
    floats = [1e-7, 2.5e-10, 5e-324, 0.000123]
    out = write_json(tmp_path / "doc.json", floats)
    assert json.loads(out.read_text(encoding="utf-8")) == floats


def test_a_nan_is_written_as_null_not_as_json_s_invalid_nan(tmp_path: Path) -> None:
    out = write_json(tmp_path / "doc.json", {"share": math.nan, "rate": math.inf})
    assert json.loads(out.read_text(encoding="utf-8")) == {"share": None, "rate": None}


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = write_json(tmp_path / "doc.json", {"v": 1})
    try:
        write_json(target, {"v": "\ud800"})  # a lone surrogate is not UTF-8
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError("a lone surrogate must not be written")
    assert json.loads(target.read_text(encoding="utf-8")) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]
