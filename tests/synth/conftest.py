"""Small synthetic bundles shared by the synth tests (40 people, one week)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from dsguard.synth import SynthConfig, SynthSummary, generate

SMALL = {"users": 40, "days": 7, "seed": 7}


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, SynthSummary]]:
    """One bundle per shape, generated once for the session."""
    out: dict[str, tuple[Path, SynthSummary]] = {}
    for shape in ("default", "sentinel", "jsonl", "hunting"):
        path = tmp_path_factory.mktemp(f"bundle-{shape}")
        out[shape] = (path, generate(path, SynthConfig(shape=shape, **SMALL)))
    return out


@pytest.fixture(scope="session")
def default_bundle(bundles: dict[str, tuple[Path, SynthSummary]]) -> Path:
    return bundles["default"][0]


@pytest.fixture(scope="session")
def truth(default_bundle: Path) -> dict[str, Any]:
    return json.loads((default_bundle / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def events(default_bundle: Path) -> list[dict[str, str]]:
    with (default_bundle / "email_events.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
