"""The sign-in facts of a message (``signin_sql``), on DuckDB with hand-made rows."""

from __future__ import annotations

import duckdb
import pytest

from dsguard.signals.features import signin_sql

MESSAGE_AT = "2026-11-02 10:00:00"


def _same_ip(mail_ip: str, signin_ip: str, signin_at: str = "2026-11-02 09:00:00") -> bool:
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE h AS SELECT 'nmid-1' AS network_message_id, 'r@contoso.com' AS recipient,
               'ceo@contoso.com' AS sk, ? AS ik, TIMESTAMP '2026-11-02 10:00:00' AS ts""",
        [mail_ip],
    )
    con.execute(
        """CREATE TABLE signins AS SELECT 'ceo@contoso.com' AS user_principal_name,
               0 AS error_code, CAST(? AS TIMESTAMP) AS ts, ? AS ip_address, 'NL' AS country""",
        [signin_at, signin_ip],
    )
    rows = con.execute(f"SELECT signin_near, signin_same_ip FROM ({signin_sql('h')})").fetchall()
    assert len(rows) == 1
    return bool(rows[0][1])


@pytest.mark.parametrize(
    ("mail_ip", "signin_ip"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        # One address, spelled differently by the mail log and the sign-in log.
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1::1", "2001:db8::1:0:0:1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
        # A dual-stack socket logs an IPv4 client as its IPv4-mapped IPv6 address.
        ("192.0.2.1", "::ffff:192.0.2.1"),
        ("::FFFF:C000:0201", "192.0.2.1"),
    ],
)
def test_one_address_in_any_spelling_is_the_same_source(mail_ip: str, signin_ip: str) -> None:
    assert _same_ip(mail_ip, signin_ip)


@pytest.mark.parametrize(
    ("mail_ip", "signin_ip"),
    [
        ("203.0.113.7", "203.0.113.8"),
        ("2001:db8::1", "2001:db8::2"),
        ("2001:db8::1", "2001:db8:1::"),
        ("192.0.2.1", "::ffff:192.0.2.2"),
        ("192.0.2.1", "::192.0.2.1"),
        ("", "203.0.113.7"),
    ],
)
def test_different_addresses_are_not(mail_ip: str, signin_ip: str) -> None:
    assert not _same_ip(mail_ip, signin_ip)


def test_same_address_too_long_before_is_not_recent() -> None:
    assert not _same_ip("2001:db8::1", "2001:DB8::1", signin_at="2026-11-01 21:59:00")
    assert _same_ip("2001:db8::1", "2001:DB8::1", signin_at="2026-11-01 22:00:00")
