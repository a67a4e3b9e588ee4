"""Ctrl-C during ``dsguard analyze --engine spark`` is one line, like on DuckDB.

PySpark's own SIGINT handler cancels the jobs and raises ``KeyboardInterrupt`` inside a py4j
call; py4j then logs the broken call through the root logger, which printed two tracebacks
(this test fails on them without the fix). The JVM also logged the tasks it refused while
shutting down; that depends on which stage the signal lands in, and was checked by hand (4 and
15 ``ERROR`` lines in two runs without ``_quiet``, none in two with it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.engines.conftest import needs_spark

from dsguard.synth import SynthConfig, generate


@needs_spark
def test_ctrl_c_while_spark_runs_is_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, SynthConfig(users=200, days=10, seed=5))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsguard.cli", "analyze", str(bundle), "--out", str(out),
         "--engine", "spark"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    # The Parquet inputs are written just before the Spark session starts; the detect steps
    # after it take about a minute on this tenant.
    handed_over = out / "spark" / "in" / "f_batch.parquet"
    deadline = time.monotonic() + 180
    while not handed_over.exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(12)
    assert proc.poll() is None, "the run ended before Ctrl-C; it should take longer"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1] == "dsguard: interrupted", err
    assert "Traceback" not in err and "ERROR" not in err, err
