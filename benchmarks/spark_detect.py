"""Spark's throughput on the detections alone, for the cluster cost estimate (docs/spark.md).

    python benchmarks/spark_detect.py EVIDENCE.duckdb --master 'local[2]' [--work DIR]

Exports the store's messages, sign-ins, header facts and tenant context to Parquet (not
timed), starts Spark (timed apart), then times ``run_spark``: features, scores and alerts
over the whole period, written out as Parquet, as the cluster job runs them. Prints one JSON
line with rows, seconds, rows per second and rows per core-second.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from dsguard.engines.spark import TENANT_TABLES, run_spark, session
from dsguard.evidence.snapshot import Snapshot
from dsguard.evidence.store import EvidenceStore
from dsguard.signals.engine import HEADER_FEATURES_SQL
from dsguard.tenant import build_tenant, register


def export(db: Path, work: Path) -> int:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with EvidenceStore(db) as store:
        con = store.con
        register(con, build_tenant(Snapshot(con)))
        con.execute(f"CREATE TEMP TABLE f_headers AS {HEADER_FEATURES_SQL}")
        tables = {"f_batch": "messages", "signins": "signins", "f_headers": "f_headers"}
        tables.update({t: t for t in TENANT_TABLES})
        for view, table in tables.items():
            con.execute(f"COPY (SELECT * FROM {table}) TO '{work / view}.parquet' (FORMAT parquet)")
        (rows,) = con.execute("SELECT count(*) FROM messages").fetchone() or (0,)
    return int(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--work", type=Path, default=Path("/tmp/dsguard-spark-bench"))
    args = ap.parse_args()
    rows = export(args.db, args.work)
    started = time.perf_counter()
    spark = session(args.master)
    start_s = time.perf_counter() - started
    for f in args.work.glob("*.parquet"):
        spark.read.parquet(str(f)).createOrReplaceTempView(f.stem)
    timer: dict[str, float] = {}
    started = time.perf_counter()
    alerts, features, scores = run_spark(spark, timer=timer)
    # as the cluster job does: features (all internal-looking rows) and scores written out
    features.write.mode("overwrite").parquet(str(args.work / "out-features"))
    scores.write.mode("overwrite").parquet(str(args.work / "out-scores"))
    seconds = time.perf_counter() - started
    cores = spark.sparkContext.defaultParallelism
    print(
        json.dumps(
            {
                "rows": rows,
                "alerts": len(alerts),
                "master": args.master,
                "cores": cores,
                "spark_start_s": round(start_s, 2),
                "seconds": round(seconds, 2),
                "rows_per_second": round(rows / seconds),
                "rows_per_core_second": round(rows / seconds / cores),
                "steps": {k: round(v, 2) for k, v in timer.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
