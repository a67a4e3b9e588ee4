"""Build ``features``: path classification plus every fact the rules read.

Reads only the evidence store (and the tenant context derived from it); writes derived
tables that the scoring stage, governance and reports read in turn.

The first run computes every row and keeps the baselines (``bl_*`` tables, see
``dsguard.signals.features``) in the store. A later run over the same store computes only the
messages that arrived since, against those baselines, so analysing a month and then one more
day costs the day. Facts that do depend on later evidence (who a sender is, sign-ins around a
message, header evidence) are refreshed on the earlier scored rows, which are few.

Rows older than what was analysed are usual, not exceptional: an export cut by arrival time
(a streaming-API file per arrival hour) carries the last minutes of the day before, and an
EmailEvents row replaces the message-trace row of the same message. The run then *rewinds*:
from the start of the oldest late or replaced row's day, features are recomputed and the
baselines are taken back to that day (``_rewind``), so a late row costs the days it touches.
Anything else that changed (the tenant's configuration, rows before the first analysed day,
this code) means a full recomputation; the answer is the same either way.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from dsguard.engines.plan import Step, drop_duckdb, run_duckdb
from dsguard.evidence import parts
from dsguard.evidence.duck import drop_relation, table_exists
from dsguard.signals.features import (
    FANOUT_MINUTES,
    FEATURE_PARTS,
    STATE_TABLES,
    TAIL_COLUMNS,
    feature_plan,
    final_sql,
    identity_columns,
    identity_sql,
    signin_sql,
    source_ip,
    source_key,
)
from dsguard.tenant import Tenant, register

# Header facts read from raw messages (``raw_messages.evidence``), keyed by the Network
# Message ID. Absent raw messages leave these NULL, and header rules simply do not fire.
HEADER_FEATURES_SQL = """
SELECT network_message_id,
    bool_or(coalesce(TRY_CAST(json_extract(evidence, '$.received.loopback_seen') AS BOOLEAN),
                     false)) AS hdr_loopback,
    any_value(coalesce(json_extract_string(evidence, '$.received.source_helo'),
                       json_extract_string(evidence, '$.received.source_rdns')))
        AS hdr_received_from,
    any_value(upper(json_extract_string(evidence, '$.antispam.cat'))) AS hdr_cat,
    any_value(json_extract_string(evidence, '$.antispam.helo')) AS hdr_helo,
    any_value(json_extract_string(evidence, '$.mailer')) AS hdr_mailer
FROM raw_messages WHERE network_message_id IS NOT NULL
GROUP BY network_message_id
"""
# A HELO that is not a fully qualified host name: a bare word, an address literal, localhost.
ODD_HELO = r"^(\[?[0-9.:a-f]+\]?|localhost(\.localdomain)?|[^.]+)$"
SCRIPT_MAILER = (
    r"(powershell|python|phpmailer|swiftmailer|sendemail|smtplib|curl|go-mail|nodemailer|\.net)"
)
# Feature columns derived from the header facts ``hd`` (``HEADER_FEATURES_SQL``), in order.
HEADER_COLUMNS: dict[str, str] = {
    "hdr_loopback": "hd.hdr_loopback",
    "hdr_received_from": "hd.hdr_received_from",
    "hdr_cat": "hd.hdr_cat",
    "hdr_mailer": "hd.hdr_mailer",
    "hdr_helo": "hd.hdr_helo",
    "hdr_odd_helo": f"regexp_matches(lower(hd.hdr_helo), '{ODD_HELO}')",
    "hdr_script_mailer": f"regexp_matches(lower(coalesce(hd.hdr_mailer, '')), '{SCRIPT_MAILER}')",
}

# Bump when stored baselines would mean something else; a mismatch forces a full run.
STATE_VERSION = "5"
# Appended baseline tables are folded into one row per key after this many runs.
COMPACT_EVERY = 8
SCORED = "internal_looking AND path <> 'authenticated'"

# ``features``, the relation scoring, governance and the report read, is a view over two
# tables. The rows rules score keep every column (``features_scored``). The authenticated
# majority (95% of internal-looking rows at 10M synthetic rows) keeps what the path inventory,
# coverage and the report read about it: its path, source, authentication and coverage facts
# (``AUTHENTICATED_COLUMNS``). Its message detail stays in ``messages`` and reads as NULL
# here, as do the facts only scored rows get. Writing every column of those rows took about
# four times as long (benchmarks/HISTORY.md).
SCORED_TABLE = "features_scored"
AUTHENTICATED_TABLE = "features_authenticated"
AUTHENTICATED_COLUMNS: tuple[str, ...] = (
    "network_message_id", "recipient", "ts", "day", "source", "sender", "sender_ipv4",
    "sender_ipv6", "connectors", "connector_name", "path", "internal_looking", "p1_internal",
    "p2_internal", "auth_spf", "auth_dkim", "auth_dmarc", "auth_compauth", "ip_office",
    "ip_connector_range", "spf_domains", "ip_in_p1_spf", "exception_source_ids",
    "on_exception_source", "covered", "covered_in_date", "covered_expired", "covering_ids",
    "covering_expired_ids",
)
AUTHENTICATED_ROWS = "path = 'authenticated'"

Timer = Callable[[str, float], None]


def header_select() -> str:
    return ",\n    ".join(f"{sql} AS {name}" for name, sql in HEADER_COLUMNS.items())


def plan() -> list[Step]:
    return feature_plan(header_select())


@dataclass
class FeatureRun:
    """What ``build_features`` did, for timings and the incremental benchmark."""

    mode: str = "full"  # "full" | "incremental" | "refresh"
    reason: str = ""
    new_rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def timer(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def build_features(
    con: duckdb.DuckDBPyConnection, tenant: Tenant, *, full: bool = False
) -> FeatureRun:
    """Create or extend ``features`` (one row per internal-looking message and recipient).

    ``full`` forces a recomputation from every message even when the stored baselines would
    allow an incremental run.
    """
    run = FeatureRun()
    started = time.perf_counter()
    register(con, tenant)
    con.execute(f"CREATE OR REPLACE TEMP TABLE f_headers AS {HEADER_FEATURES_SQL}")
    fingerprint = _fingerprint(con)
    con.begin()
    try:
        state = _State.load(con)
        decision = "forced" if full else state.why_full(con, fingerprint)
        if decision:
            run.reason = decision
            _full(con, run)
        else:
            _incremental(con, state, run)
            create_features_view(con)
        _save_state(con, fingerprint, run)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        _drop_temp(con, "f_headers", "f_batch", "f_tail")
    run.timer("total", time.perf_counter() - started)
    return run


def feature_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("DESCRIBE features").fetchall()}


def create_feature_tables(con: duckdb.DuckDBPyConnection, like: str) -> None:
    """Empty ``features_scored``/``features_authenticated`` shaped like the relation ``like``
    (one row per internal-looking message and recipient), and the ``features`` view."""
    drop_relation(con, "features")
    con.execute(f"CREATE OR REPLACE TABLE {SCORED_TABLE} AS SELECT * FROM {like} LIMIT 0")
    con.execute(
        f"CREATE OR REPLACE TABLE {AUTHENTICATED_TABLE} AS "
        f"SELECT {', '.join(AUTHENTICATED_COLUMNS)} FROM {like} LIMIT 0"
    )
    create_features_view(con)


def create_features_view(con: duckdb.DuckDBPyConnection) -> None:
    """``features``: both tables as one, in the column order of ``features_scored``.

    The large table comes first: DuckDB sizes a grouping over a UNION by its first input,
    and with the small one first a grouping by message over 30M rows ran out of memory
    instead of spilling. Made again on every run, so a store written before keeps up.
    """
    columns = ", ".join(r[0] for r in con.execute(f"DESCRIBE {SCORED_TABLE}").fetchall())
    con.execute(
        f"""CREATE OR REPLACE VIEW features AS
            SELECT {columns} FROM (
                SELECT *, {source_ip()} AS source_ip FROM {AUTHENTICATED_TABLE}
                UNION ALL BY NAME
                SELECT * FROM {SCORED_TABLE})"""
    )


def store_features(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Replace ``features`` with every row of ``relation`` (computed elsewhere, e.g. by
    Spark), split between its two tables as ``build_features`` splits them."""
    create_feature_tables(con, relation)
    con.execute(
        f"INSERT INTO {SCORED_TABLE} SELECT * FROM {relation} "
        f"WHERE ({AUTHENTICATED_ROWS}) IS NOT TRUE"
    )
    con.execute(
        f"INSERT INTO {AUTHENTICATED_TABLE} SELECT {', '.join(AUTHENTICATED_COLUMNS)} "
        f"FROM {relation} WHERE {AUTHENTICATED_ROWS}"
    )


# ----------------------------------------------------------------------------- full run
def _full(con: duckdb.DuckDBPyConnection, run: FeatureRun) -> None:
    run.mode = "full"
    for name, cols in STATE_TABLES.items():
        con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
    con.execute("CREATE OR REPLACE TEMP VIEW f_batch AS SELECT * FROM messages")
    con.execute(f"CREATE OR REPLACE TEMP TABLE f_tail ({TAIL_COLUMNS})")
    steps = plan()
    run_duckdb(con, steps, timer=run.timer)
    t = time.perf_counter()
    create_feature_tables(con, "f_features")
    _write_features(con)
    run.timer("write features", time.perf_counter() - t)
    (run.new_rows,) = _one(con, "SELECT count(*) FROM f_il")
    _update_state(con, run)
    drop_duckdb(con, steps)


def _write_features(con: duckdb.DuckDBPyConnection) -> None:
    """Append ``f_features`` to its two tables (``final_sql`` parts): the same rows, without
    probing the scored-only steps for the authenticated majority."""
    header = header_select()
    scored, authenticated = FEATURE_PARTS
    con.execute(f"INSERT INTO {SCORED_TABLE} {final_sql(header, scored)}")
    con.execute(
        f"INSERT INTO {AUTHENTICATED_TABLE} SELECT {', '.join(AUTHENTICATED_COLUMNS)} "
        f"FROM ({final_sql(header, authenticated)})"
    )


# ----------------------------------------------------------------------------- incremental
def _incremental(con: duckdb.DuckDBPyConnection, state: _State, run: FeatureRun) -> None:
    watermark = state.watermark
    assert watermark is not None
    new = state.pending
    steps = plan()
    if new:
        run.mode = "incremental"
        if state.since is not None:
            # Late rows: recompute from the start of their day; features now end before it.
            run.reason = (
                f"messages older than the analysed period arrived: "
                f"recomputed from {state.since:%Y-%m-%d}"
            )
            _rewind(con, state.since, run)
            batch = f"ts >= {_ts(state.since)}"
            lo = state.since - timedelta(minutes=FANOUT_MINUTES)
        else:
            batch = f"ts > {_ts(watermark)}"
            (lo,) = _one(con, f"SELECT min(ts) FROM messages WHERE {batch}")
            lo = lo - timedelta(minutes=FANOUT_MINUTES)
        con.execute(f"CREATE OR REPLACE TEMP VIEW f_batch AS SELECT * FROM messages WHERE {batch}")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE f_tail AS
                SELECT network_message_id, recipient, ts, coalesce(sender, '') AS sk,
                    {source_key("features")} AS ik, path = 'authenticated' AS auth
                FROM features WHERE ts >= {_ts(lo)} AND ts <= {_ts(watermark)}"""
        )
        run_duckdb(con, steps, timer=run.timer)
        t = time.perf_counter()
        _write_features(con)
        run.timer("write features", time.perf_counter() - t)
        (run.new_rows,) = _one(con, "SELECT count(*) FROM f_il")
        _update_state(con, run)
        drop_duckdb(con, steps)
    else:
        run.mode = "refresh"
    _refresh(con, state, run)


def _rewind(con: duckdb.DuckDBPyConnection, since: datetime, run: FeatureRun) -> None:
    """Take ``features`` and the baselines back to ``since`` (the start of a day), as if only
    the messages before it had ever been analysed; the batch then recomputes every row from
    ``since`` on, late ones included.

    Counts lose the share of the deleted feature rows (``bl_sender_hours``, ``bl_pairs``), and
    days from ``since`` on leave ``bl_days``. What covers every message, not only the
    internal-looking ones that have feature rows (``bl_identity``, ``bl_receivers``), is
    derived again from the messages before ``since``: each of them was analysed before, as
    every late or replaced row is later. ``bl_sources`` says what came *first*, so it is
    derived again from the scored rows that stay.
    """
    t = time.perf_counter()
    at = _ts(since)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE f_undo AS
            SELECT coalesce(sender, '') AS sk, recipient, CAST(hour(ts) AS BIGINT) AS hour_of_day
            FROM features WHERE ts >= {at}"""
    )
    for table in (SCORED_TABLE, AUTHENTICATED_TABLE):
        con.execute(f"DELETE FROM {table} WHERE ts >= {at}")
    con.execute(f"DELETE FROM bl_days WHERE day >= CAST({at} AS DATE)")
    con.execute(
        """CREATE OR REPLACE TABLE bl_sender_hours AS
           SELECT sk, hour_of_day, CAST(sum(n) AS BIGINT) AS n FROM (
               SELECT sk, hour_of_day, n FROM bl_sender_hours
               UNION ALL SELECT sk, hour_of_day, -count(*) FROM f_undo GROUP BY sk, hour_of_day)
           GROUP BY sk, hour_of_day HAVING sum(n) <> 0"""
    )
    # Appended like any batch; the next compaction folds the negative counts in.
    con.execute("INSERT INTO bl_pairs SELECT sk, recipient, -count(*) FROM f_undo GROUP BY ALL")
    con.execute(
        f"""CREATE OR REPLACE TABLE bl_sources AS
            SELECT DISTINCT coalesce(sender, '') AS sk, {source_key(SCORED_TABLE)} AS ik
            FROM {SCORED_TABLE} WHERE {source_key(SCORED_TABLE)} <> ''"""
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW f_batch AS SELECT * FROM messages WHERE ts < {at}")
    for table, step in (("bl_identity", "f_ident_batch"), ("bl_receivers", "f_rcpt_batch")):
        (sql,) = [s.sql for s in plan() if s.name == step]
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    con.execute("DROP TABLE f_undo")
    run.timer("rewind", time.perf_counter() - t)


def _refresh(con: duckdb.DuckDBPyConnection, state: _State, run: FeatureRun) -> None:
    """Bring the facts that depend on later evidence up to date on earlier scored rows."""
    t = time.perf_counter()
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE f_old AS
            SELECT network_message_id, recipient, ts, coalesce(sender, '') AS sk,
                {source_key(SCORED_TABLE)} AS ik
            FROM {SCORED_TABLE} WHERE {SCORED}"""
    )
    # Identity: from the baselines alone (this batch is already in them).
    con.execute("CREATE OR REPLACE TEMP TABLE f_ident_batch (sender VARCHAR, auth_sent BIGINT)")
    con.execute("CREATE OR REPLACE TEMP TABLE f_rcpt_batch (address VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE f_id AS {identity_sql('f_old')}")
    f = SCORED_TABLE
    cols = identity_columns(
        "true", f"{f}.p1_internal", f"{f}.p2_internal", f"{f}.sender_from_domain", "i"
    )
    _update(con, cols, "f_id i", f"i.sender = {f}.sender AND {SCORED}")
    run.timer("refresh identity", time.perf_counter() - t)
    # Sign-ins: only rows whose look-around window new sign-ins fall into.
    t = time.perf_counter()
    window = state.signin_window(con)
    if window is not None:
        lo, hi = window
        where = "true" if lo is None else f"ts BETWEEN {_ts(lo)} AND {_ts(hi)}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE f_old_sig AS SELECT * FROM f_old WHERE {where}"
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE f_sig AS
                SELECT o.network_message_id, o.recipient,
                    coalesce(s.signin_near, false) AS signin_near,
                    coalesce(s.signin_same_ip, false) AS signin_same_ip, s.signin_countries
                FROM f_old_sig o LEFT JOIN ({signin_sql("f_old_sig")}) s
                    ON s.network_message_id = o.network_message_id
                    AND s.recipient = o.recipient"""
        )
        _update(
            con,
            {c: f"s.{c}" for c in ("signin_near", "signin_same_ip", "signin_countries")},
            "f_sig s",
            f"s.network_message_id = {f}.network_message_id AND s.recipient = {f}.recipient",
        )
    run.timer("refresh sign-ins", time.perf_counter() - t)
    # Header evidence: raw messages may arrive for any earlier (scored) message.
    t = time.perf_counter()
    _update(con, HEADER_COLUMNS, "f_headers hd", f"hd.network_message_id = {f}.network_message_id")
    run.timer("refresh headers", time.perf_counter() - t)
    for name in ("f_old", "f_id", "f_ident_batch", "f_rcpt_batch", "f_old_sig", "f_sig"):
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _update(
    con: duckdb.DuckDBPyConnection, cols: dict[str, str], source: str, match: str
) -> None:
    """UPDATE the scored rows from ``source`` where ``match`` holds and any value differs
    (only scored rows keep the facts that later evidence changes)."""
    f = SCORED_TABLE
    sets = ", ".join(f"{name} = {sql}" for name, sql in cols.items())
    differs = " OR ".join(f"{f}.{name} IS DISTINCT FROM ({sql})" for name, sql in cols.items())
    con.execute(f"UPDATE {f} SET {sets} FROM {source} WHERE {match} AND ({differs})")


# ----------------------------------------------------------------------------- state
def _update_state(con: duckdb.DuckDBPyConnection, run: FeatureRun) -> None:
    """Fold this batch into the baselines."""
    t = time.perf_counter()
    con.execute(
        """INSERT INTO bl_days SELECT sk, ik, day FROM f_days_new
           EXCEPT SELECT sk, ik, day FROM bl_days"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE bl_sender_hours AS
           SELECT sk, hour_of_day, CAST(sum(n) AS BIGINT) AS n FROM (
               SELECT sk, hour_of_day, n FROM bl_sender_hours
               UNION ALL SELECT sk, hour_of_day, count(*) FROM f_il GROUP BY sk, hour_of_day)
           GROUP BY sk, hour_of_day"""
    )
    con.execute("INSERT INTO bl_pairs SELECT sk, recipient, count(*) FROM f_il GROUP BY ALL")
    con.execute(
        """INSERT INTO bl_sources SELECT DISTINCT sk, ik FROM f_sc WHERE ik <> ''
           EXCEPT SELECT sk, ik FROM bl_sources"""
    )
    con.execute(
        "INSERT INTO bl_identity SELECT sender, auth_sent, total_sent FROM f_ident_batch"
    )
    con.execute(
        """INSERT INTO bl_receivers SELECT address FROM f_rcpt_batch
           EXCEPT SELECT address FROM bl_receivers"""
    )
    con.execute("CREATE OR REPLACE TABLE bl_first_day AS SELECT d0 FROM f_first_day")
    run.timer("update baselines", time.perf_counter() - t)


def _compact(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE OR REPLACE TABLE bl_pairs AS
           SELECT sk, recipient, CAST(sum(n) AS BIGINT) AS n FROM bl_pairs GROUP BY ALL
           HAVING sum(n) <> 0"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE bl_identity AS
           SELECT sender, CAST(sum(auth_sent) AS BIGINT) AS auth_sent,
               CAST(sum(total_sent) AS BIGINT) AS total_sent
           FROM bl_identity GROUP BY ALL"""
    )


def _save_state(con: duckdb.DuckDBPyConnection, fingerprint: str, run: FeatureRun) -> None:
    (watermark,) = _one(con, "SELECT max(ts) FROM messages")
    messages = parts.count(con, "messages")
    signins = parts.count(con, "signins")
    seq = _journal_seq(con)
    old = _State.load(con)
    batches = 0 if run.mode == "full" else old.batches + (1 if run.mode == "incremental" else 0)
    if batches >= COMPACT_EVERY:
        _compact(con)
        batches = 0
    values = {
        "fingerprint": fingerprint,
        "watermark": watermark.isoformat() if watermark else "",
        "messages": str(messages),
        "signins": str(signins),
        "seq": str(seq),
        "batches": str(batches),
    }
    con.execute("CREATE TABLE IF NOT EXISTS detect_state (key VARCHAR, value VARCHAR)")
    con.execute("DELETE FROM detect_state")
    con.executemany("INSERT INTO detect_state VALUES (?, ?)", list(values.items()))


@dataclass
class _State:
    values: dict[str, str]
    pending: int = 0  # message rows to compute in this run
    since: datetime | None = None  # rewind to here (late rows arrived), else extend

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> _State:
        if not table_exists(con, "detect_state"):
            return cls({})
        rows = con.execute("SELECT key, value FROM detect_state").fetchall()
        return cls(dict(rows))

    @property
    def watermark(self) -> datetime | None:
        text = self.values.get("watermark")
        return datetime.fromisoformat(text) if text else None

    @property
    def batches(self) -> int:
        return int(self.values.get("batches") or 0)

    def changes(self, con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
        if not table_exists(con, "ingest_changes"):
            return []
        return con.execute(
            "SELECT op, rows, min_ts, max_ts FROM ingest_changes WHERE seq > ? AND tbl = ?",
            [int(self.values.get("seq") or 0), table],
        ).fetchall()

    def why_full(self, con: duckdb.DuckDBPyConnection, fingerprint: str) -> str:
        """Why this run must start from scratch, or "" when the baselines can be extended."""
        if not self.values:
            return "no baselines yet"
        if self.values.get("fingerprint") != fingerprint:
            return "tenant context or feature definitions changed"
        for name in (SCORED_TABLE, AUTHENTICATED_TABLE, *STATE_TABLES):
            if not table_exists(con, name):
                return f"{name} missing"
        watermark = self.watermark
        if watermark is None:
            return "no messages analysed yet"
        changes = self.changes(con, "messages")
        if any(op not in ("insert", "delete") for op, *_ in changes):
            return "messages changed outside ingest"
        # Ingest deletes a message row only to put a richer one in its place (an EmailEvents
        # row for a message-trace row), so a delete is a late row like any other.
        net = sum(n if op == "insert" else -n for op, n, *_ in changes)
        total = parts.count(con, "messages")
        if total != int(self.values["messages"]) + net:
            return "messages changed outside ingest"
        late = [lo for _, n, lo, _ in changes if n and lo <= watermark]
        if late:
            return self._rewind_to(con, min(late))
        (newer,) = _one(con, f"SELECT count(*) FROM messages WHERE ts > {_ts(watermark)}")
        if newer != net:
            return "messages changed outside ingest"
        self.pending = net
        return ""

    def _rewind_to(self, con: duckdb.DuckDBPyConnection, oldest: datetime) -> str:
        """Plan a rewind to the start of ``oldest``'s day (UTC); a reason for a full run
        when that day comes before the first analysed one."""
        (since,) = _one(con, f"SELECT date_trunc('day', {_ts(oldest)})")
        (first,) = _one(con, "SELECT min(d0) FROM bl_first_day")
        if first is None or since.date() < first:
            return "messages older than the first analysed day arrived"
        self.since = since
        (self.pending,) = _one(con, f"SELECT count(*) FROM messages WHERE ts >= {_ts(since)}")
        return ""

    def signin_window(
        self, con: duckdb.DuckDBPyConnection
    ) -> tuple[datetime | None, datetime | None] | None:
        """Time range of earlier messages whose sign-in facts may have changed: ``None`` for
        none, ``(None, None)`` for all of them."""
        changes = self.changes(con, "signins")
        total = parts.count(con, "signins")
        added = sum(n for _, n, *_ in changes)
        if any(op != "insert" for op, *_ in changes) or total != int(
            self.values.get("signins") or 0
        ) + added:
            return (None, None)
        spans = [(lo, hi) for _, n, lo, hi in changes if n]
        if not spans:
            return None
        # A sign-in at s counts for messages from s - 7 days to s + 1 day.
        lo = min(s[0] for s in spans) - timedelta(days=1)
        hi = max(s[1] for s in spans) + timedelta(days=7)
        return (lo, hi)


def _journal_seq(con: duckdb.DuckDBPyConnection) -> int:
    if not table_exists(con, "ingest_changes"):
        return 0
    (seq,) = _one(con, "SELECT coalesce(max(seq), 0) FROM ingest_changes")
    return int(seq)


def _fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """The tenant context and the feature definitions: if either changes, baselines and
    stored rows may mean something else."""
    h = hashlib.sha256(STATE_VERSION.encode())
    for step in plan():
        h.update(step.sql.encode())
    for table in ("t_domains", "t_ranges", "t_exceptions", "t_connectors"):
        rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        h.update(json.dumps(rows, default=str).encode())
    return h.hexdigest()


def _drop_temp(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop temporary tables or views by name, whichever they are."""
    for name in names:
        row = con.execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_name = ? AND table_catalog = 'temp'",
            [name],
        ).fetchone()
        if row:
            kind = "VIEW" if row[0] == "VIEW" else "TABLE"
            con.execute(f"DROP {kind} {name}")


def _ts(value: datetime) -> str:
    """A TIMESTAMPTZ literal for a value this module read from the store (never user text)."""
    return f"TIMESTAMPTZ '{value.isoformat()}'"


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row
