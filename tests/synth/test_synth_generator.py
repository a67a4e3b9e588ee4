"""Determinism, row targets and the vectorised helpers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from dsguard.synth import SynthConfig, SynthSummary, generate
from dsguard.synth.vec import (
    NET_EPOCH_TICKS,
    TICKS_PER_SECOND,
    guids,
    iso_timestamps,
    rng_for,
    us_datetimes,
)

SMALL = {"users": 40, "days": 7}


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path, bundles: dict[str, tuple[Path, SynthSummary]]
                              ) -> None:
    again = tmp_path / "again"
    generate(again, SynthConfig(seed=7, **SMALL))
    assert _digest(again) == _digest(bundles["default"][0])


def test_different_seed_different_bundle(tmp_path: Path,
                                         bundles: dict[str, tuple[Path, SynthSummary]]) -> None:
    other = tmp_path / "other"
    generate(other, SynthConfig(seed=8, **SMALL))
    a, b = _digest(other), _digest(bundles["default"][0])
    assert a["email_events.csv"] != b["email_events.csv"]
    assert a["truth.json"] != b["truth.json"]


def test_rows_target_is_exact(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    summary = generate(tmp_path, SynthConfig(rows=12_345, days=5, users=30),
                       progress=lambda s, d, t: calls.append((s, d, t)))
    assert summary.email_events_rows == 12_345
    assert summary.rows["email_events.csv"] == 12_345
    assert any(s == "email_events" and d == t == 12_345 for s, d, t in calls)


def test_regenerating_into_a_folder_replaces_old_files(tmp_path: Path) -> None:
    generate(tmp_path, SynthConfig(shape="sentinel", **SMALL))
    generate(tmp_path, SynthConfig(**SMALL))
    assert not list(tmp_path.glob("email_events_*.csv"))


def test_refuses_to_clear_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange" / "organization_config.json").write_text("{}")
    with pytest.raises(FileExistsError):
        generate(tmp_path, SynthConfig(**SMALL))
    assert (tmp_path / "exchange" / "organization_config.json").read_text() == "{}"


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        SynthConfig(shape="parquet")
    with pytest.raises(ValueError):
        SynthConfig(users=3)


def test_guids_carry_exchange_time() -> None:
    ticks = np.array([17_940_101_837_290_000], dtype=np.int64)
    g = guids(rng_for(1, "t"), 1, ticks).to_pylist()[0]
    assert len(g) == 36 and g.count("-") == 4
    assert int(g[-12:], 16) == (int(ticks[0]) + NET_EPOCH_TICKS) >> 16


def test_timestamp_formats() -> None:
    dt = datetime(2026, 11, 3, 14, 5, 11, tzinfo=UTC)
    ticks = np.array([int(dt.timestamp()) * TICKS_PER_SECOND + 1_234_567], dtype=np.int64)
    assert iso_timestamps(ticks, 7).to_pylist() == ["2026-11-03T14:05:11.1234567Z"]
    assert iso_timestamps(ticks, 3).to_pylist() == ["2026-11-03T14:05:11.123Z"]
    assert us_datetimes(ticks).to_pylist() == ["11/3/2026 2:05:11 PM"]
    midnight = np.array([int(datetime(2026, 11, 3, tzinfo=UTC).timestamp()) * TICKS_PER_SECOND])
    assert us_datetimes(midnight).to_pylist() == ["11/3/2026 12:00:00 AM"]
