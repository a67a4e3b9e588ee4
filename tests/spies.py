"""A spy for tests that count what the code under test did, not only what it produced."""

from __future__ import annotations

from typing import Any

import pytest


def returns_of(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """Wrap ``owner.name`` for the test; the list fills with each call's return value."""
    real = getattr(owner, name)
    returned: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        returned.append(real(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(owner, name, spy)
    return returned
