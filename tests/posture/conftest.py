"""Fixtures for posture tests; the helpers live in ``support.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posture.support import Bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Iterator[Bundle]:
    b = Bundle(tmp_path)
    yield b
    b.close()
