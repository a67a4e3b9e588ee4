"""Severity levels shared by alerts and findings, ordered so ``--fail-on`` can compare them."""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    INFORMATIONAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r}; use one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()
