"""Shared test fixtures. The real-world messages live in ../shared (CC BY-NC 4.0) and are
read from there, never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_dir() -> Path:
    return Path(os.environ.get("DSGUARD_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def real_eml_dir() -> Path:
    path = shared_dir() / "data" / "real-eml"
    if not path.is_dir():
        pytest.skip(f"real-world messages not available at {path} (set DSGUARD_SHARED)")
    return path


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(params=["aside", "in the store"])
def both_stagings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with an appending reader's files staged both ways: small files in the
    database aside (what tests' small files get by default), and, with the threshold at
    zero, in the store's transaction (what files of 64 MB and more get)."""
    if request.param == "in the store":
        from dsguard.evidence import store

        monkeypatch.setattr(store, "STAGE_ASIDE_BYTES", 0)
    return str(request.param)
