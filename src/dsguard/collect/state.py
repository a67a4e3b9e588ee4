"""The checkpoint that makes a collection resumable, and atomic file writes.

``BUNDLE/.collect-state.json`` records the period being collected and every unit of work
that finished: an Exchange cmdlet, the app grants, DNS, each mail-telemetry time slice, each
group of sign-ins. A unit's file is written to ``NAME.part`` and renamed into place before
the unit is recorded, so a stopped run leaves either a whole file or none (``.part`` files
are removed on the next run, and no bundle reader matches them). A rerun skips what is
recorded and collects the rest of the same period: no duplicates, no gaps.

``--extend`` moves a bundle's end on to now (``State.extend``): the new part is one more gap,
the configuration is collected again, and the mail slices of the last hours before the old
end are *reopened*: collected again and their files replaced, because Advanced Hunting and
message trace make some rows visible only after their timestamp's slice was fetched.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dsguard.collect.errors import CollectError

STATE_FILE = ".collect-state.json"
STATE_VERSION = 1
PARTIAL = ".part"
# How far before the old end an extension collects mail and sign-ins again. How late
# Advanced Hunting, message trace and the sign-in log make a row visible is unverified
# (detection-signals.md gives no bound); a lab result changes this one value (or
# ``--recheck-hours`` on the command line).
RECHECK = timedelta(hours=6)
# Units collected again on every extension: they describe the tenant now, not a period.
REFRESHED = ("exchange", "apps", "dns", "mail")


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with ``Z``, whole seconds unless the time has a fraction."""
    dt = dt.astimezone(UTC)
    spec = "seconds" if not dt.microsecond else "microseconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def stamp(dt: datetime) -> str:
    """A file-name-safe UTC time: ``20260301T000000Z``."""
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` so that it is never seen half-written: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PARTIAL)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_lines(path: Path, rows: Iterable[Any]) -> int:
    """``rows`` as one JSON object per line, atomically; returns the count."""
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]
    write_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)


def remove_partials(bundle: Path) -> int:
    """Delete ``*.part`` files a stopped run left behind; returns how many."""
    count = 0
    for tmp in bundle.rglob(f"*{PARTIAL}"):
        if tmp.is_file():
            with contextlib.suppress(OSError):
                tmp.unlink()
                count += 1
    return count


@dataclass(frozen=True)
class Period:
    """The half-open interval ``[start, end)`` a collection covers."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> int:
        return max(1, round((self.end - self.start).total_seconds() / 3600))


class State:
    """The checkpoint file of one bundle (see the module docstring)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def open(
        cls, bundle: Path, *, tenant: str, days: int, end: datetime, extend: bool = False
    ) -> tuple[State, bool]:
        """The bundle's checkpoint, or a new one for ``days`` up to ``end``.

        Returns ``(state, resumed)``. A checkpoint for another tenant or another ``--days``
        is an error: mixing two collections in one bundle would make its contents a lie.
        With ``extend`` the bundle's own start stands, so ``days`` is not compared.
        """
        path = bundle / STATE_FILE
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CollectError(
                    f"{path} is damaged ({type(exc).__name__}); delete it to start over"
                ) from None
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise CollectError(f"{path} was written by another dsguard version")
            if str(data.get("tenant", "")).lower() != tenant.lower():
                raise CollectError(
                    f"{bundle} holds a collection for tenant {data.get('tenant')}; use another "
                    "--out folder"
                )
            if data.get("days") != days and not extend:
                raise CollectError(
                    f"{bundle} holds a collection of --days {data.get('days')}; rerun with "
                    f"--days {data.get('days')} to continue it, or use another --out folder"
                )
            return cls(path, data), True
        start = end.timestamp() - days * 86400
        data = {
            "version": STATE_VERSION,
            "tenant": tenant,
            "days": days,
            "start": iso(datetime.fromtimestamp(start, UTC)),
            "end": iso(end),
            "created": iso(datetime.now(UTC).replace(microsecond=0)),
            "units": {},
            "slices": {},
        }
        state = cls(path, data)
        state.save()
        return state, False

    @property
    def period(self) -> Period:
        return Period(parse_iso(self.data["start"]), parse_iso(self.data["end"]))

    def save(self) -> None:
        self.data["updated"] = iso(datetime.now(UTC).replace(microsecond=0))
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")

    # ------------------------------------------------------------------ units
    def unit(self, name: str) -> dict[str, Any] | None:
        """What was recorded for a finished unit (``"exchange:accepted_domains"``), or None."""
        value = self.data["units"].get(name)
        return value if isinstance(value, dict) else None

    def finish(self, name: str, **info: Any) -> None:
        self.data["units"][name] = info
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    # ------------------------------------------------------------------ extending
    def extend(
        self, end: datetime, recheck: timedelta, files: dict[str, Callable[..., Path]]
    ) -> datetime | None:
        """Move the period's end on to ``end``; returns the old end, or None when the
        bundle already reaches it.

        The mail slices that end after ``old end - recheck`` are reopened (``files`` names a
        slice's file for each time-sliced source), the configuration units are forgotten so
        they are collected again, and the sign-ins get a new batch for the new window.
        """
        period = self.period
        if end <= period.end:
            return None
        since = max(period.start, period.end - recheck)
        reopened = self.data.setdefault("reopened", {})
        for source, namer in files.items():
            kept = []
            for s, e, n in self.data["slices"].get(source) or []:
                if parse_iso(e) > since:
                    reopened.setdefault(source, []).append(namer(parse_iso(s), parse_iso(e)).name)
                else:
                    kept.append([s, e, n])
            self.data["slices"][source] = kept
        units = self.data["units"]
        for name in [u for u in units if u.split(":")[0] in REFRESHED]:
            del units[name]
        batches = self.signin_batches()
        batches.append({"id": stamp(end), "start": iso(since), "end": iso(end)})
        self.data["signin_batches"] = batches
        self.data.pop("signin_chunks", None)  # now in the first batch
        self.data.setdefault("extensions", []).append(
            {"from": iso(period.end), "to": iso(end), "recheck_from": iso(since),
             "at": iso(datetime.now(UTC).replace(microsecond=0))}
        )  # fmt: skip
        self.data["end"] = iso(end)
        self.save()
        return period.end

    def reopened(self, source: str) -> set[str]:
        """File names of ``source``'s reopened slices: collected again, not to be adopted."""
        return set((self.data.get("reopened") or {}).get(source) or [])

    def close_reopened(
        self, bundle: Path, source: str, namer: Callable[..., Path], pattern: re.Pattern[str]
    ) -> None:
        """Once every gap is collected again: delete the reopened files no new slice
        replaced (the new slices may be cut elsewhere), then forget them. Only a name of the
        source's own slice files is ever deleted, whatever the checkpoint says."""
        current = {namer(s, e).name for s, e, _ in self.slices(source)}
        for name in self.reopened(source) - current:
            if pattern.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    (bundle / name).unlink()
        (self.data.get("reopened") or {}).pop(source, None)
        self.save()

    def signin_batches(self) -> list[dict[str, Any]]:
        """Sign-in windows, oldest first: the first covers the period the bundle was
        collected for (its chunks under ``signin_chunks`` until an extension), each
        extension adds one with an ``id``."""
        batches = self.data.get("signin_batches")
        if isinstance(batches, list) and batches:
            return batches
        first: dict[str, Any] = {"id": "", "start": self.data["start"], "end": self.data["end"]}
        if "signin_chunks" in self.data:
            first["chunks"] = self.data["signin_chunks"]
        return [first]

    def put_signin_chunks(self, batch_id: str, chunks: list[list[str]]) -> None:
        if batch_id == "" and not self.data.get("signin_batches"):
            self.put("signin_chunks", chunks)
            return
        for batch in self.data["signin_batches"]:
            if batch["id"] == batch_id:
                batch["chunks"] = chunks
        self.save()

    # ------------------------------------------------------------------ time slices
    def slices(self, source: str) -> list[tuple[datetime, datetime, int]]:
        """Finished ``(start, end, rows)`` slices of a time-sliced source, in time order."""
        raw = self.data["slices"].get(source) or []
        out = [(parse_iso(s), parse_iso(e), int(n)) for s, e, n in raw]
        return sorted(out)

    def add_slice(self, source: str, start: datetime, end: datetime, rows: int) -> None:
        done = self.data["slices"].setdefault(source, [])
        entry = [iso(start), iso(end), rows]
        if entry[:2] not in [d[:2] for d in done]:
            done.append(entry)
        self.save()


def gaps(period: Period, done: Iterable[tuple[datetime, datetime, int]]) -> list[Period]:
    """The parts of ``period`` no finished slice covers, in order."""
    out: list[Period] = []
    cursor = period.start
    for start, end, _ in sorted(done):
        if end <= cursor:
            continue
        if start > cursor:
            out.append(Period(cursor, min(start, period.end)))
        cursor = max(cursor, end)
        if cursor >= period.end:
            break
    if cursor < period.end:
        out.append(Period(cursor, period.end))
    return [p for p in out if p.end > p.start]


def adopt_orphans(bundle: Path, state: State, source: str, pattern: re.Pattern[str]) -> int:
    """Record slice files that were renamed into place but not checkpointed (a run stopped
    between the two); they are complete, and collecting them again would duplicate rows."""
    period = state.period
    done = state.slices(source)
    reopened = state.reopened(source)
    adopted = 0
    for path in sorted(bundle.iterdir()):
        m = pattern.match(path.name)
        if not m or not path.is_file() or path.name in reopened:
            continue
        start, end = parse_stamp(m[1]), parse_stamp(m[2])
        if start < period.start or end > period.end or start >= end:
            continue
        if any(s < end and start < e for s, e, _ in done):
            continue
        rows = _count_rows(path)
        state.add_slice(source, start, end, rows)
        done.append((start, end, rows))
        adopted += 1
    return adopted


def _count_rows(path: Path) -> int:
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())
