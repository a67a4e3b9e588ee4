"""dsguard's detections as a Spark job, for estates too large for one machine.

    # once, on any machine with the bundle's configuration files (a few kilobytes):
    python -m dsguard.engines.spark_job export-tenant BUNDLE tenant.json

    # on the cluster (spark-submit, Databricks job, Fabric notebook or Spark job definition):
    spark-submit --master yarn dsguard/engines/spark_job.py run \\
        --email-events abfss://.../EmailEvents --email-events-format delta \\
        --signins abfss://.../SigninLogs --signins-format delta --signins-schema sentinel \\
        --tenant tenant.json --out abfss://.../dsguard/2026-12-01

Inputs are tables, not bundles: Defender ``EmailEvents`` (Advanced Hunting / Sentinel data
lake columns) or messages already in dsguard's model (``--email-events-schema model``, e.g.
exported from an evidence store), and sign-ins as Sentinel ``SigninLogs`` or in the model.
The adapters below map them onto the columns the feature SQL reads, with the same rules as
dsguard's readers (trimmed, lower-cased addresses, verdicts from ``AuthenticationDetails``,
flags from ``DetectionMethods``; rows without an id, recipient or time dropped). Office egress
is learned from the sign-ins, as ``dsguard.tenant`` does.

An input is a path (``delta``, ``parquet``, ``csv``) or, with ``table``, the name of a table
the Spark session's catalog knows (Unity Catalog, a Fabric lakehouse, a registered view).

Writes ``alerts.jsonl`` (from the driver) and ``features``/``scores`` as Parquet under
``--out``. An input that cannot be read ends the job with one line that says why (exit 2).
See ``docs/spark.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsguard.engines.iprange import ip_keys_sql
from dsguard.evidence.addresses import IPV4_PATTERN, IPV6_PATTERN, spark_full_match

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_ADDR = "lower(nullif(trim(BOTH ' <>\t' FROM {x}), ''))"
_TEXT = "nullif(trim({x}), '')"
# The ingest's address patterns, for a Spark SQL string literal.
IPV4_SPARK = spark_full_match(IPV4_PATTERN)
IPV6_SPARK = spark_full_match(IPV6_PATTERN)
# Columns the adapters read; missing ones are added as NULL (exports differ).
EMAIL_EVENTS_COLUMNS = (
    "NetworkMessageId", "RecipientEmailAddress", "Timestamp", "TimeGenerated",
    "InternetMessageId", "SenderMailFromAddress", "SenderFromAddress", "SenderMailFromDomain",
    "SenderFromDomain", "SenderDisplayName", "SenderIPv4", "SenderIPv6", "Subject",
    "EmailDirection",
    "DeliveryAction", "AuthenticationDetails", "DetectionMethods", "Connectors",
)  # fmt: skip
SIGNINLOGS_COLUMNS = (
    "Id", "CorrelationId", "CreatedDateTime", "TimeGenerated", "UserPrincipalName",
    "IPAddress", "ResultType", "LocationDetails",
)  # fmt: skip


def _addr(x: str) -> str:
    return _ADDR.format(x=x)


def _text(x: str) -> str:
    return _TEXT.format(x=x)


# Spark SQL over a view ``email_events_raw`` with Defender's EmailEvents columns.
DEFENDER_EMAIL_EVENTS_SQL = f"""
WITH r AS (
    SELECT
        {_text("NetworkMessageId")} AS network_message_id,
        {_addr("RecipientEmailAddress")} AS recipient,
        coalesce(TRY_CAST(Timestamp AS TIMESTAMP), TRY_CAST(TimeGenerated AS TIMESTAMP)) AS ts,
        'email_events' AS source,
        {_text("InternetMessageId")} AS internet_message_id,
        {_addr("SenderMailFromAddress")} AS sender_mail_from,
        {_addr("SenderFromAddress")} AS sender_from,
        {_addr("SenderMailFromDomain")} AS mf_domain,
        {_addr("SenderFromDomain")} AS from_domain,
        nullif(SenderDisplayName, '') AS sender_display_name,
        {_text("SenderIPv4")} AS sender_ipv4,
        lower({_text("SenderIPv6")}) AS sender_ipv6,
        nullif(Subject, '') AS subject,
        CASE lower({_text("EmailDirection")})
            WHEN 'inbound' THEN 'Inbound' WHEN 'outbound' THEN 'Outbound'
            WHEN 'intra-org' THEN 'Intra-org' WHEN 'intraorg' THEN 'Intra-org'
            WHEN 'unknown' THEN NULL ELSE {_text("EmailDirection")} END AS direction,
        {_text("DeliveryAction")} AS delivery_action,
        lower({_text("AuthenticationDetails")}) AS auth,
        {_text("DetectionMethods")} AS dm,
        {_text("Connectors")} AS connectors
    FROM email_events_raw),
n AS (
    SELECT r.*,
        coalesce(mf_domain, nullif(regexp_extract(sender_mail_from, '@([^@]*)$', 1), ''))
            AS sender_mail_from_domain,
        coalesce(from_domain, nullif(regexp_extract(sender_from, '@([^@]*)$', 1), ''))
            AS sender_from_domain,
        get_json_object(auth, '$.spf') AS auth_spf,
        get_json_object(auth, '$.dkim') AS auth_dkim,
        get_json_object(auth, '$.dmarc') AS auth_dmarc,
        get_json_object(auth, '$.compauth') AS auth_compauth,
        filter(flatten(transform(map_values(from_json(dm, 'map<string,string>')),
            v -> CASE WHEN v LIKE '[%' THEN from_json(v, 'array<string>') ELSE array(v) END)),
            f -> f IS NOT NULL) AS detection_flags,
        row_number() OVER (PARTITION BY network_message_id, recipient ORDER BY ts) AS k
    FROM r
    WHERE network_message_id IS NOT NULL AND recipient IS NOT NULL AND ts IS NOT NULL
      AND (sender_ipv4 IS NULL OR sender_ipv4 RLIKE '{IPV4_SPARK}')
      AND (sender_ipv6 IS NULL OR sender_ipv6 RLIKE '{IPV6_SPARK}'))
SELECT network_message_id, recipient, ts, source, internet_message_id, sender_mail_from,
    sender_mail_from_domain, sender_from, sender_from_domain, sender_display_name,
    sender_ipv4, sender_ipv6, subject, direction, delivery_action, detection_flags, auth_spf,
    auth_dkim, auth_dmarc, auth_compauth, connectors
FROM n WHERE k = 1
"""

# Spark SQL over a view ``signins_raw`` with Sentinel's SigninLogs columns.
SENTINEL_SIGNINLOGS_SQL = """
SELECT coalesce(Id, CorrelationId) AS signin_id,
    coalesce(TRY_CAST(CreatedDateTime AS TIMESTAMP), TRY_CAST(TimeGenerated AS TIMESTAMP)) AS ts,
    lower(nullif(trim(UserPrincipalName), '')) AS user_principal_name,
    nullif(trim(IPAddress), '') AS ip_address,
    TRY_CAST(ResultType AS BIGINT) AS error_code,
    get_json_object(CAST(LocationDetails AS STRING), '$.countryOrRegion') AS country
FROM signins_raw
"""


def office_egress_sql(min_users: int) -> str:
    """Office exits as ``t_ranges`` rows, learned from sign-ins like ``dsguard.tenant``
    (DuckDB dialect, run through ``to_spark`` like the feature SQL)."""
    exits = f"""(SELECT ip_address AS ip FROM signins
        WHERE ip_address IS NOT NULL AND coalesce(error_code, 0) = 0
        GROUP BY ip_address HAVING count(DISTINCT user_principal_name) >= {min_users}) x"""
    return f"""
SELECT 'office' AS kind, 'office egress' AS label,
    concat(lower(ip), CASE WHEN ip_int IS NULL THEN '/128' ELSE '/32' END) AS cidr,
    ip_int AS start_ip, ip_int AS end_ip, ip6 AS start_ip6, ip6 AS end_ip6
FROM ({ip_keys_sql(exits)}) k
WHERE ip_int IS NOT NULL OR regexp_matches(ip, '^(?:{IPV6_PATTERN})$')"""


# ----------------------------------------------------------------------------- tenant
def export_tenant(bundle: Path, target: Path) -> dict[str, Any]:
    """The tenant context of a bundle's configuration files as JSON (office egress excluded:
    the job learns it from the sign-ins it reads)."""
    from dsguard.bundle import discover
    from dsguard.evidence.snapshot import Snapshot
    from dsguard.evidence.store import EvidenceStore
    from dsguard.tenant import build_tenant, register

    config = [
        (r, p) for r, p in discover(bundle, telemetry=False)
        if r.source in ("exchange_config", "dns", "exceptions")
    ]  # fmt: skip
    with EvidenceStore(":memory:") as store:
        store.ingest(config, root=bundle)
        tenant = build_tenant(Snapshot(store.con))
        tenant.office_egress = []
        register(store.con, tenant)
        doc: dict[str, Any] = {}
        for table in ("t_domains", "t_ranges", "t_exceptions", "t_connectors"):
            cur = store.con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            doc[table] = [
                {k: _plain(v) for k, v in zip(names, r, strict=True)} for r in cur.fetchall()
            ]
    target.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return doc


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


_TENANT_SCHEMAS = {
    "t_domains": "domain string",
    "t_ranges": (
        "kind string, label string, cidr string, start_ip long, end_ip long, "
        "start_ip6 string, end_ip6 string"
    ),
    "t_exceptions": "id string, sender string, expires date, has_sources boolean",
    "t_connectors": "name string, connector_type string",
}


def register_tenant(spark: SparkSession, doc: dict[str, Any]) -> None:
    from datetime import date

    from dsguard.tenant import OFFICE_EGRESS_MIN_USERS

    for table, schema in _TENANT_SCHEMAS.items():
        names = [c.split()[0] for c in schema.split(", ")]
        rows = []
        for r in doc.get(table, []):
            row = [r.get(n) for n in names]
            if table == "t_exceptions" and row[2]:
                row[2] = date.fromisoformat(row[2])
            rows.append(tuple(row))
        spark.createDataFrame(rows, schema).createOrReplaceTempView(table)
    from dsguard.engines.sqlglot_rules import to_spark

    office = spark.sql(to_spark(office_egress_sql(OFFICE_EGRESS_MIN_USERS)))
    spark.table("t_ranges").unionByName(office).createOrReplaceTempView("t_ranges")


# ----------------------------------------------------------------------------- inputs
FORMATS = ("delta", "parquet", "csv", "table")

DELTA_MISSING = (
    "this Spark session has no Delta Lake. Databricks and Fabric have it built in; elsewhere "
    "add it to spark-submit (--packages io.delta:delta-spark_2.13:<version> --conf "
    "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension --conf "
    "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog), or "
    "write the table as Parquet and read it with format parquet"
)
# Spark's error classes that say what is wrong with an input in a few words.
_INPUT_ERRORS = {
    "PATH_NOT_FOUND": "no such path",
    "TABLE_OR_VIEW_NOT_FOUND": "no such table in the session's catalog",
    "UNABLE_TO_INFER_SCHEMA": "no data files there (an empty folder?)",
}
_ERROR_CLASS = re.compile(r"\[([A-Z][A-Z_.]+)\]\s*([^\n]*)")


class JobError(Exception):
    """An input or option the job cannot use; ``main`` prints it as one line."""


def spark_error(exc: BaseException, fmt: str) -> str:
    """Why Spark could not read an input, in one line (PySpark's ``AnalysisException`` and
    py4j's ``Py4JJavaError`` both carry Spark's error class in their text)."""
    text = str(exc)
    m = _ERROR_CLASS.search(text)
    if m and m.group(1) == "DATA_SOURCE_NOT_FOUND" and fmt == "delta":
        return DELTA_MISSING
    if m:
        return _INPUT_ERRORS.get(m.group(1)) or f"{m.group(1)}: {m.group(2)[:300]}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first[:300] or type(exc).__name__


def read_table(spark: SparkSession, path: str, fmt: str, option: str = "input") -> DataFrame:
    """The input at ``path`` (a table name for ``table``); ``JobError`` if Spark cannot
    read it."""
    try:
        if fmt == "table":
            return spark.table(path)
        if fmt == "csv":
            # RFC 4180 files double their quotes; Spark's default escape is a backslash.
            return (
                spark.read.option("header", True)
                .option("escape", '"')
                .option("multiLine", True)
                .csv(path)
            )
        return spark.read.format(fmt).load(path)
    except Exception as exc:  # PySpark and py4j errors share no base class but Exception
        raise JobError(f"{option} {path}: {spark_error(exc, fmt)}") from exc


def with_columns(df: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """``df`` with every column in ``names``, missing ones as NULL strings."""
    from pyspark.sql import functions as F

    have = {c.lower() for c in df.columns}
    for name in names:
        if name.lower() not in have:
            df = df.withColumn(name, F.lit(None).cast("string"))
    return df


def register_inputs(spark: SparkSession, args: argparse.Namespace) -> None:
    events = read_table(spark, args.email_events, args.email_events_format, "--email-events")
    if args.email_events_schema == "defender":
        events = with_columns(events, EMAIL_EVENTS_COLUMNS)
        events.createOrReplaceTempView("email_events_raw")
        events = spark.sql(DEFENDER_EMAIL_EVENTS_SQL)
    events.createOrReplaceTempView("f_batch")
    signins = read_table(spark, args.signins, args.signins_format, "--signins")
    if args.signins_schema == "sentinel":
        signins = with_columns(signins, SIGNINLOGS_COLUMNS)
        signins.createOrReplaceTempView("signins_raw")
        signins = spark.sql(SENTINEL_SIGNINLOGS_SQL)
    signins.createOrReplaceTempView("signins")
    if args.headers:
        headers = read_table(spark, args.headers, "parquet", "--headers")
        headers.createOrReplaceTempView("f_headers")
    else:
        from dsguard.engines.spark import empty_view
        from dsguard.signals.features import HEADER_INPUT_COLUMNS

        empty_view(spark, "f_headers", HEADER_INPUT_COLUMNS)


def read_tenant(path: str) -> dict[str, Any]:
    """The tenant context ``export-tenant`` wrote; ``JobError`` if ``path`` is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise JobError(f"--tenant {path}: {exc}") from exc
    missing = [t for t in _TENANT_SCHEMAS if not isinstance(doc, dict) or t not in doc]
    if missing:
        raise JobError(
            f"--tenant {path}: not a tenant context written by export-tenant "
            f"(no {', '.join(missing)})"
        )
    return doc


def run(args: argparse.Namespace) -> int:
    from dsguard.engines.spark import run_spark, session

    tenant = read_tenant(args.tenant)
    spark = session(args.master)
    register_inputs(spark, args)  # the tenant's office egress is learned from the sign-ins
    register_tenant(spark, tenant)
    timer: dict[str, float] = {}
    try:
        alerts, features, scores = run_spark(spark, timer=timer)
        out = args.out.rstrip("/")
        features.write.mode("overwrite").partitionBy("day").parquet(f"{out}/features")
        scores.write.mode("overwrite").parquet(f"{out}/scores")
        lines = [json.dumps(a.model_dump(mode="json")) for a in alerts]
        # Written by Spark so any file system works (abfss://, s3a://, dbfs:/); one part file.
        rows = spark.createDataFrame([(line,) for line in lines], "value string")
        rows.coalesce(1).write.mode("overwrite").text(f"{out}/alerts")
    finally:
        # The steps' cached frames would outlive the job in a shared session (a notebook
        # running it twice, or the tests), and fill the driver's heap.
        spark.catalog.clearCache()
    print(json.dumps({"alerts": len(alerts), "seconds": timer}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dsguard-spark", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export-tenant", help="tenant context of a bundle as JSON")
    ex.add_argument("bundle", type=Path)
    ex.add_argument("target", type=Path)
    rn = sub.add_parser("run", help="run the detections on Spark")
    rn.add_argument("--email-events", required=True)
    rn.add_argument("--email-events-format", default="delta", choices=FORMATS)
    rn.add_argument("--email-events-schema", default="defender", choices=["defender", "model"])
    rn.add_argument("--signins", required=True)
    rn.add_argument("--signins-format", default="delta", choices=FORMATS)
    rn.add_argument("--signins-schema", default="sentinel", choices=["sentinel", "model"])
    rn.add_argument("--headers", default=None, help="header facts (parquet), optional")
    rn.add_argument("--tenant", required=True, help="JSON from export-tenant")
    rn.add_argument("--out", required=True)
    rn.add_argument("--master", default=None, help="only outside spark-submit")
    args = ap.parse_args(argv)
    from dsguard.bundle import BundleError
    from dsguard.terminal import safe

    try:
        if args.command == "export-tenant":
            export_tenant(args.bundle, args.target)
            return 0
        return run(args)
    except (JobError, BundleError, OSError) as exc:
        # Spark may quote a record of the input (a subject, a display name): made inert.
        print(f"dsguard-spark: error: {safe(exc, limit=800)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
