"""Writing output files atomically, so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_default)


@contextmanager
def atomic(path: Path) -> Iterator[IO[str]]:
    """A text handle whose content replaces ``path`` only if the block completes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> Path:
    with atomic(path) as fh:
        fh.write(text)
    return path


def write_json(path: Path, value: Any) -> Path:
    return write_text(
        path, json.dumps(value, ensure_ascii=False, default=_default, indent=2) + "\n"
    )


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    with atomic(path) as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
    return path
