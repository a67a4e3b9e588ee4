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
