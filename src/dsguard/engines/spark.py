"""The Spark engine: the same feature, scoring and campaign SQL, transpiled with sqlglot.

Nothing here defines a detection. The steps come from ``dsguard.signals.features``
(``feature_plan``), ``dsguard.scoring.score`` (``score_sql``) and ``dsguard.scoring.alerts``
(``campaign_steps``); each is translated by ``dsguard.engines.sqlglot_rules.to_spark`` and
registered as a temporary view. Alerts are assembled on the driver by the same code as on
DuckDB, from one summary row per campaign and the few evidence rows it cites.

Two entry points:

* ``detect_with_spark``: the detect stage of ``dsguard analyze --engine spark``. The bundle
  is ingested by DuckDB as usual; messages, sign-ins and the tenant context travel to Spark as
  Parquet; features come back to the store (and ``scores``, the view over them) so
  governance and reports run unchanged.
* ``run_spark`` (and ``python -m dsguard.engines.spark_job``): for a cluster, over inputs
  that are already tables (Parquet, Delta or CSV), at any scale.

Spark always runs in UTC (``spark.sql.session.timeZone``), like the DuckDB store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from dsguard.engines.plan import Step
from dsguard.engines.sqlglot_rules import to_spark
from dsguard.pipeline import InputError
from dsguard.results import Alert
from dsguard.scoring.alerts import alerts_from_campaigns, assemble_campaigns, campaign_steps
from dsguard.scoring.score import score_sql
from dsguard.signals.features import HEADER_INPUT_COLUMNS, STATE_TABLES, TAIL_COLUMNS
from dsguard.signals.rules import Rule, catalogue

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from dsguard.tenant import Tenant

DEFAULT_MASTER = "local[2]"
# What a local session keeps of finished jobs, stages, tasks and SQL executions. Spark keeps
# 1,000 / 1,000 / 100,000 / 1,000 of them for its UI whether or not the UI runs, and with those
# defaults every job of dsguard's left about 170 MB more on the driver's heap after a full GC
# (669 MB after the first of five jobs on the test tenant, 1,338 MB after the fifth); with one
# of each, 142 MB and 240 MB after four (``docs/spark.md``). Nothing in dsguard reads them.
LITTLE_HISTORY = {
    "spark.ui.retainedJobs": "1",
    "spark.ui.retainedStages": "1",
    "spark.ui.retainedTasks": "1",
    "spark.sql.ui.retainedExecutions": "1",
}
# Tables the plan reads besides the messages: what DuckDB hands over as Parquet.
TENANT_TABLES = ("t_domains", "t_ranges", "t_exceptions", "t_connectors")
_SPARK_TYPES = {
    "VARCHAR": "STRING",
    "BIGINT": "BIGINT",
    "DATE": "DATE",
    "TIMESTAMPTZ": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
}


class SparkUnavailable(InputError):
    """pyspark (or Java) is missing; the message says what to install."""


class _Py4jRootRecords(logging.Filter):
    """Drops what py4j logs through the *root* logger (``logging.exception("Exception while
    sending command.")`` when Ctrl-C or a dying JVM breaks a call): that call configures a
    stderr handler and prints a traceback. The failure itself still reaches the caller as an
    exception, which dsguard reports in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}py4j{os.sep}" not in record.pathname


_PY4J_FILTER = _Py4jRootRecords()


def _quiet(spark: SparkSession) -> None:
    """After Ctrl-C: the JVM logs every task it refuses while it shuts down; the user asked
    for the stop, so say nothing (best effort: the gateway may already be gone)."""
    with contextlib.suppress(Exception):  # the interrupt is what matters, not this
        spark.sparkContext.setLogLevel("OFF")


def session(master: str | None = None, *, app: str = "dsguard") -> SparkSession:
    """A Spark session in UTC. ``master`` defaults to ``$DSGUARD_SPARK_MASTER`` or
    ``local[2]``; on a cluster (``spark-submit``) the submitted master wins."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SparkUnavailable(
            "the Spark engine needs pyspark (pip install 'dsguard[spark]') and Java 17"
        ) from exc
    from pyspark import SparkConf

    # PySpark warns on import paths that pandas 3 is not fully supported; dsguard's Spark
    # code never converts to or from pandas, so the warning would only confuse a user.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    builder = SparkSession.builder.appName(app)
    # Under spark-submit (a cluster, Databricks, Fabric) the submitted master wins.
    submitted = SparkConf().contains("spark.master")
    chosen = master or os.environ.get("DSGUARD_SPARK_MASTER") or DEFAULT_MASTER
    if not submitted:
        builder = builder.master(chosen)
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.ui.showConsoleProgress": "false",
    }
    if not submitted and chosen.startswith("local"):
        conf["spark.driver.extraJavaOptions"] = "-Duser.timezone=UTC"
        conf["spark.ui.enabled"] = "false"
        conf.update(LITTLE_HISTORY)  # no UI to show it; a cluster's own settings stay
        # Few, small partitions: the default 200 shuffle partitions cost more than the work.
        conf["spark.sql.shuffle.partitions"] = os.environ.get("DSGUARD_SPARK_PARTITIONS", "8")
        conf["spark.driver.memory"] = os.environ.get("DSGUARD_SPARK_DRIVER_MEMORY", "2g")
    for key, value in conf.items():
        builder = builder.config(key, value)
    logging.getLogger().addFilter(_PY4J_FILTER)  # once: a filter is added only if absent
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def empty_view(spark: SparkSession, name: str, columns: str) -> None:
    """A temp view with no rows and the given DuckDB-typed columns (a first-run baseline)."""
    cols = []
    for part in columns.split(","):
        col, kind = part.split()
        cols.append(f"CAST(NULL AS {_SPARK_TYPES[kind.upper()]}) AS {col}")
    spark.sql(f"SELECT {', '.join(cols)} WHERE 1 = 0").createOrReplaceTempView(name)


def run_steps(
    spark: SparkSession,
    steps: Iterable[Step],
    *,
    timer: MutableMapping[str, float] | None = None,
) -> None:
    """Register each step as a temp view; materialised steps are cached (memory and disk),
    because later steps read them several times."""
    for step in steps:
        started = time.perf_counter()
        df = spark.sql(to_spark(step.sql))
        if step.materialise:
            df = df.persist()
            df.count()
        df.createOrReplaceTempView(step.name)
        if timer is not None:
            timer[f"spark {step.name}"] = time.perf_counter() - started


def feature_steps() -> list[Step]:
    from dsguard.signals.engine import plan

    return plan()


def register_first_run_state(spark: SparkSession) -> None:
    """Empty baselines and tail: Spark always computes the whole period."""
    for name, cols in STATE_TABLES.items():
        empty_view(spark, name, cols)
    empty_view(spark, "f_tail", TAIL_COLUMNS)


def run_spark(
    spark: SparkSession,
    *,
    rules: tuple[Rule, ...] | None = None,
    timer: MutableMapping[str, float] | None = None,
) -> tuple[list[Alert], DataFrame, DataFrame]:
    """Features, scores and alerts over views already registered in ``spark``:
    ``f_batch`` (messages in the evidence model's columns), ``signins``, ``f_headers`` and
    the tenant tables. Returns the alerts and the ``features`` and ``scores`` frames."""
    rules = rules or catalogue()
    register_first_run_state(spark)
    run_steps(spark, feature_steps(), timer=timer)
    features = spark.table("f_features")
    features.createOrReplaceTempView("features")
    columns = set(features.columns)
    started = time.perf_counter()
    scores = spark.sql(to_spark(score_sql("features", columns, rules))).persist()
    scores.createOrReplaceTempView("scores")
    if timer is not None:
        timer["spark scores"] = time.perf_counter() - started
    steps = campaign_steps(rules)
    run_steps(spark, steps, timer=timer)
    started = time.perf_counter()
    groups = _collect(spark.table("c_groups"))
    have = set(spark.table("c_members").columns)
    campaigns = assemble_campaigns(groups, rules, have, _spark_fetch(spark))
    alerts = alerts_from_campaigns(campaigns, rules)
    if timer is not None:
        timer["spark alerts"] = time.perf_counter() - started
    return alerts, features, scores


def _collect(df: DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, timestamps as UTC-aware datetimes whatever the driver's zone is."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    stamps = [f.name for f in df.schema.fields if isinstance(f.dataType, TimestampType)]
    for name in stamps:
        df = df.withColumn(name, F.unix_micros(F.col(name)))
    out = []
    for row in df.collect():
        d = row.asDict(recursive=True)
        for name in stamps:
            if d[name] is not None:
                d[name] = datetime.fromtimestamp(d[name] / 1_000_000, UTC)
        out.append(d)
    return out


def _spark_fetch(spark: SparkSession) -> Any:
    def fetch(
        wanted: list[tuple[str, int, int]], cols: list[str]
    ) -> dict[tuple[str, int, int], dict[str, Any]]:
        keys = spark.createDataFrame(wanted, "gkey string, segment long, rn long")
        members = spark.table("c_members").select("gkey", "segment", "rn", *cols)
        rows = _collect(members.join(keys, ["gkey", "segment", "rn"]))
        return {(r["gkey"], int(r["segment"]), int(r["rn"])): {c: r[c] for c in cols} for r in rows}

    return fetch


# ----------------------------------------------------------------------------- analyze
def detect_with_spark(
    con: duckdb.DuckDBPyConnection,
    tenant: Tenant,
    out: Path,
    *,
    timer: MutableMapping[str, float] | None = None,
    master: str | None = None,
) -> list[Alert]:
    """The detect stage on Spark, for ``dsguard analyze --engine spark``.

    The store's messages, sign-ins, header facts and tenant context are written as Parquet
    under ``OUT/spark``; Spark computes features, scores and alerts; the features are loaded
    back into the store, and Spark's scores kept beside them as Parquet. The DuckDB baselines
    are dropped, so a later DuckDB run starts from scratch rather than extend baselines these
    features were not computed from.
    """
    from dsguard.scoring.alerts import score_messages
    from dsguard.signals.engine import HEADER_FEATURES_SQL, feature_columns, store_features
    from dsguard.tenant import register

    work = out / "spark"
    shutil.rmtree(work, ignore_errors=True)
    (work / "in").mkdir(parents=True)
    started = time.perf_counter()
    register(con, tenant)
    con.execute(f"CREATE OR REPLACE TEMP TABLE f_headers AS {HEADER_FEATURES_SQL}")
    inputs = {"f_batch": "messages", "signins": "signins", "f_headers": "f_headers"}
    inputs.update({t: t for t in TENANT_TABLES})
    for view, table in inputs.items():
        target = work / "in" / f"{view}.parquet"
        con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' (FORMAT parquet)")
    con.execute("DROP TABLE f_headers")
    if timer is not None:
        timer["export to parquet"] = time.perf_counter() - started
    started = time.perf_counter()
    spark = session(master)
    if timer is not None:
        timer["spark start"] = time.perf_counter() - started
    try:
        for view in inputs:
            spark.read.parquet(str(work / "in" / f"{view}.parquet")).createOrReplaceTempView(
                view
            )
        alerts, features, scores = run_spark(spark, timer=timer)
        started = time.perf_counter()
        for name, df in (("features", features), ("scores", scores)):
            df.write.mode("overwrite").parquet(str(work / f"{name}.parquet"))
    except KeyboardInterrupt:
        _quiet(spark)
        raise
    store_features(con, f"read_parquet('{work / 'features.parquet'}/*.parquet')")
    # The store's ``scores`` is a view over the features, as after a DuckDB run; Spark's own
    # scores stay in ``OUT/spark/scores.parquet`` (the parity test compares the two).
    score_messages(con, feature_columns(con))
    con.execute("DROP TABLE IF EXISTS detect_state")
    if timer is not None:
        timer["load results"] = time.perf_counter() - started
    spark.catalog.clearCache()
    return alerts


__all__ = [
    "DEFAULT_MASTER",
    "HEADER_INPUT_COLUMNS",
    "SparkUnavailable",
    "detect_with_spark",
    "run_spark",
    "session",
]
