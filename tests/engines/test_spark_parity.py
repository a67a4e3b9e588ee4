"""The Spark engine runs the same detections as DuckDB: on a synthetic tenant, ``analyze
--engine spark`` (pyspark, ``local[2]``, UTC) gives the same alerts and the same feature and
score rows, and the cluster job over the raw Defender export gives the same alerts.

Slow (a JVM starts): deselect with ``-m "not slow"``; skipped when pyspark or Java is missing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from tests.engines.conftest import needs_spark

from dsguard.pipeline import analyze
from dsguard.synth import SynthConfig, generate

pytestmark = pytest.mark.slow


def _add_ipv6_spoofs(bundle: Path) -> None:
    """Internal-looking Direct Send from two sources known only by IPv6 (the synthetic
    tenant has none): each is its own source on both engines, and an exception whose range
    holds only the first covers only its messages."""
    events = bundle / "email_events.csv"
    with events.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        first = next(reader)
    domain = first["RecipientEmailAddress"].split("@")[1]
    day = first["Timestamp"][:10]
    with events.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for n, ip in enumerate(("2001:DB8:DEAD::1", "2001:db8:dead::2")):
            for k in range(3):
                writer.writerow({
                    **dict.fromkeys(header, ""),
                    "Timestamp": f"{day}T20:0{k}:{30 * n:02d}.0000000Z",  # interleaved
                    "NetworkMessageId": f"00000000-0000-0000-0000-00000000{n}{k:03d}",
                    "SenderMailFromAddress": f"payroll@{domain}",
                    "SenderFromAddress": f"payroll@{domain}",
                    "SenderIPv6": ip,
                    "RecipientEmailAddress": f"ipv6-{n}{k}@{domain}",
                    "Subject": "Payroll update",
                    "EmailDirection": "Inbound",
                    "DeliveryAction": "Delivered",
                    "AuthenticationDetails": '{"SPF":"fail","DKIM":"none","DMARC":"fail"}',
                })  # fmt: skip
    registry = bundle / "exceptions.yaml"
    registry.write_text(
        registry.read_text(encoding="utf-8")
        + f"""  - id: EX-IPV6
    name: "Payroll relay over IPv6"
    owner: hr@{domain}
    justification: "Parity test: an IPv6 range."
    sources: [2001:db8:dead::/127]
    senders: [payroll@{domain}]
    recipients: internal
    expires: 2099-01-01
""",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity")
    generate(root / "bundle", SynthConfig(users=40, days=14, seed=3))
    _add_ipv6_spoofs(root / "bundle")
    ctx = analyze(root / "bundle", root / "duckdb")
    with duckdb.connect(str(root / "duckdb" / "evidence.duckdb"), read_only=True) as con:
        bursts = con.execute(
            "SELECT sender_ipv6, list((source_burst, source_fanout) ORDER BY ts) FROM features "
            "WHERE sender_ipv6 LIKE '2001:db8:dead::%' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    counts = [(1, 1), (2, 2), (3, 3)]  # pooled into one source they would be 1, 3, 5 and 2, 4, 6
    assert bursts == [("2001:db8:dead::1", counts), ("2001:db8:dead::2", counts)]
    with duckdb.connect(str(root / "duckdb" / "evidence.duckdb"), read_only=True) as con:
        covered = con.execute(
            "SELECT sender_ipv6, bool_and(covered_in_date), list(DISTINCT covering_ids[1]) "
            "FROM features WHERE sender_ipv6 LIKE '2001:db8:dead::%' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert covered == [("2001:db8:dead::1", True, ["EX-IPV6"]), ("2001:db8:dead::2", False, [None])]
    ips = [json.loads(line)["source_ips"] for line in (root / "duckdb" / "alerts.jsonl").open()]
    # The source the exception covers raises nothing; the other is an alert of its own.
    assert ["2001:db8:dead::2"] in ips and not any("2001:db8:dead::1" in i for i in ips)
    assert ctx.alerts, "the tenant should raise alerts"
    return root


@needs_spark
def test_spark_alerts_features_and_scores_match_duckdb(
    tenant: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSGUARD_SPARK_MASTER", "local[2]")
    spark = analyze(tenant / "bundle", tenant / "spark", engine="spark")
    assert (tenant / "spark" / "alerts.jsonl").read_text() == (
        tenant / "duckdb" / "alerts.jsonl"
    ).read_text()
    con = duckdb.connect()
    con.execute(f"ATTACH '{tenant / 'duckdb' / 'evidence.duckdb'}' AS d (READ_ONLY)")
    con.execute(f"ATTACH '{tenant / 'spark' / 'evidence.duckdb'}' AS s (READ_ONLY)")
    # Spark's own scores, not the store's view over the features Spark computed.
    spark_scores = f"read_parquet('{tenant / 'spark' / 'spark' / 'scores.parquet'}/*.parquet')"
    for table, theirs in (("features", "s.features"), ("scores", spark_scores)):
        cols = [r[0] for r in con.execute(f"DESCRIBE d.{table}").fetchall()]
        assert cols == [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {theirs}").fetchall()]
        order = "ORDER BY network_message_id, recipient"
        a = con.execute(f"SELECT * FROM d.{table} {order}").fetchall()
        b = con.execute(f"SELECT * FROM {theirs} {order}").fetchall()
        assert a and len(a) == len(b) and a == b, table
    (stored,) = con.execute("SELECT count(*) FROM s.scores").fetchone() or (0,)
    assert stored == con.execute(f"SELECT count(*) FROM {spark_scores}").fetchone()[0]
    assert spark.stage_details["detect"]["spark"] > 0


def _job_inputs(tenant: Path) -> Path:
    """tenant.json, the sign-ins and the header facts of the DuckDB run, as the job reads them."""
    from dsguard.engines import spark_job
    from dsguard.signals.engine import HEADER_FEATURES_SQL

    inputs = tenant / "job-in"
    if not inputs.exists():
        inputs.mkdir()
        spark_job.export_tenant(tenant / "bundle", inputs / "tenant.json")
        with duckdb.connect(str(tenant / "duckdb" / "evidence.duckdb"), read_only=True) as con:
            con.execute(f"COPY signins TO '{inputs / 'signins.parquet'}' (FORMAT parquet)")
            con.execute(
                f"COPY ({HEADER_FEATURES_SQL}) TO '{inputs / 'headers.parquet'}' (FORMAT parquet)"
            )
    return inputs


def _run_job(tenant: Path, name: str, events: tuple[str, ...], signins: tuple[str, ...]) -> Path:
    """Run the cluster job on ``local[2]`` with these event and sign-in options (sign-ins in
    dsguard's model); the folder it wrote."""
    from dsguard.engines import spark_job

    inputs, out = _job_inputs(tenant), tenant / name
    code = spark_job.main(
        ["run", *events, *signins, "--signins-schema", "model",
         "--headers", str(inputs / "headers.parquet"), "--tenant", str(inputs / "tenant.json"),
         "--out", str(out), "--master", "local[2]"]
    )  # fmt: skip
    assert code == 0
    return out


def _job_alerts(out: Path) -> list[dict[str, object]]:
    (part,) = (out / "alerts").glob("part-*")
    return [json.loads(line) for line in part.read_text().splitlines() if line]


def _duckdb_alerts(tenant: Path) -> list[dict[str, object]]:
    text = (tenant / "duckdb" / "alerts.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


@needs_spark
def test_cluster_job_on_the_defender_export_matches_duckdb(tenant: Path) -> None:
    inputs = _job_inputs(tenant)
    events = ("--email-events", str(tenant / "bundle" / "email_events.csv"))
    signins = ("--signins", str(inputs / "signins.parquet"))
    out = _run_job(tenant, "job-out", (*events, "--email-events-format", "csv"),
                   (*signins, "--signins-format", "parquet"))  # fmt: skip
    assert _job_alerts(out) == _duckdb_alerts(tenant)


@needs_spark
def test_cluster_job_reads_catalog_tables_by_name(tenant: Path) -> None:
    """``--...-format table``: what Unity Catalog, a Fabric lakehouse or a registered view
    holds, read by name from the session's catalog."""
    from dsguard.engines import spark_job
    from dsguard.engines.spark import session

    inputs = _job_inputs(tenant)
    spark = session("local[2]")
    events = spark_job.read_table(spark, str(tenant / "bundle" / "email_events.csv"), "csv")
    events.createOrReplaceTempView("security_emailevents")
    spark.read.parquet(str(inputs / "signins.parquet")).createOrReplaceTempView(
        "security_signins"
    )
    out = _run_job(tenant, "job-out-tables",
                   ("--email-events", "security_emailevents", "--email-events-format", "table"),
                   ("--signins", "security_signins", "--signins-format", "table"))  # fmt: skip
    assert _job_alerts(out) == _duckdb_alerts(tenant)
