"""Measure a command: wall time and peak resident memory of its whole process tree.

Every measured step runs in its own subprocess, so one step's memory never counts against
another and a crash is contained. Peak RSS is sampled with psutil every 50 ms (the sum over
the process and its children, which matters for Spark's JVM). The kernel's ``ru_maxrss`` is
not used: Linux copies the parent's high-water mark into a forked child, so after a large
step in the driver it over-reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

PYTHON = sys.executable
HERE = Path(__file__).resolve().parent
SAMPLE_SECONDS = 0.05


@dataclass
class Measure:
    name: str
    seconds: float
    peak_rss_mb: float
    rows: int | None = None
    returncode: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows_per_second"] = self.rows_per_second
        return d


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def measure(
    name: str,
    argv: list[str],
    *,
    rows: int | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    rss_cap_mb: float | None = None,
) -> tuple[Measure, str]:
    """Run ``argv``; return its measure and its stdout.

    With ``rss_cap_mb`` the process tree is killed when it grows beyond that (the machine is
    shared; a runaway comparison must not take it down); the measure then says so.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, stdout=out, stderr=err, env={**os.environ, **(env or {})}, text=True
        )
        proc = psutil.Process(child.pid)
        peak = 0
        done = threading.Event()

        capped = False

        def sample() -> None:
            nonlocal peak, capped
            while not done.is_set():
                peak = max(peak, _tree_rss(proc))
                if rss_cap_mb and peak / 2**20 > rss_cap_mb and not capped:
                    capped = True
                    for p in [*proc.children(recursive=True), proc]:
                        with contextlib.suppress(psutil.Error):
                            p.kill()
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, _ = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    # Sampling only: a child's ru_maxrss starts from its parent's high-water mark at fork
    # (Linux copies it into the child), so it over-reports after a large step in this process.
    peak_mb = peak / 2**20
    m = Measure(name, seconds, peak_mb, rows=rows, returncode=child.returncode)
    if capped:
        m.extra["killed_at_rss_cap_mb"] = rss_cap_mb
        return m, stdout
    if check and child.returncode != 0:
        raise RuntimeError(f"{name} failed ({child.returncode}): {stderr[-3000:]}")
    return m, stdout


def python_script(script: str, *args: str) -> list[str]:
    return [PYTHON, str(HERE / script), *args]


def dsguard(*args: str) -> list[str]:
    return [PYTHON, "-m", "dsguard.cli", *args]


def write_results(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
