"""The local Spark session dsguard starts (``analyze --engine spark``, the tests)."""

from __future__ import annotations

import time

from tests.engines.conftest import needs_spark

from dsguard.engines.spark import LITTLE_HISTORY, session


@needs_spark
def test_a_local_session_forgets_finished_jobs() -> None:
    """Spark keeps a thousand finished jobs (and their stages, tasks and SQL plans) for a UI
    the local session does not run; in one session that history grew the driver's heap by
    about 170 MB a dsguard job."""
    spark = session("local[1]")
    conf = spark.sparkContext.getConf()
    assert {key: conf.get(key) for key in LITTLE_HISTORY} == LITTLE_HISTORY
    for n in range(6):
        spark.range(n + 1).selectExpr("sum(id)").collect()
    tracker = spark.sparkContext.statusTracker()
    deadline = time.monotonic() + 30  # the status store trims itself on a thread of its own
    while len(tracker.getJobIdsForGroup()) > 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(tracker.getJobIdsForGroup()) <= 2
