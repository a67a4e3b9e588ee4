"""The HTTP client on its own, through ``httpx.MockTransport``: retries, tokens, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from dsguard.collect import AccessDenied, ApiError, AuthenticationFailed, ServiceUnavailable
from dsguard.collect.errors import CollectError, redact, register_secret
from dsguard.collect.http import ApiClient, RetryPolicy, Service, parse_retry_after

BASE = "https://graph.example.test"


class Cred:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls = 0
        self.fail = fail

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.calls += 1
        if self.fail:
            raise self.fail
        return AccessToken(f"tok{self.calls}", int(time.time()) + 3600)


def client(
    handler: Any, cred: Cred | None = None, sleeps: list[float] | None = None, attempts: int = 4
) -> ApiClient:
    retry = RetryPolicy(attempts=attempts, jitter=False, sleep=(sleeps if sleeps is not None
                                                               else []).append)  # fmt: skip
    return ApiClient(Service("Graph", BASE, f"{BASE}/.default"), cred or Cred(),
                     transport=httpx.MockTransport(handler), retry=retry)  # fmt: skip


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_doubles_and_is_capped_and_retry_after_wins() -> None:
    policy = RetryPolicy(jitter=False, backoff=1, max_backoff=5, max_retry_after=60)
    assert [policy.delay(n, None) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert policy.delay(1, 30) == 30
    assert policy.delay(1, 3600) == 60
    jittered = RetryPolicy(backoff=4)
    assert all(2 <= jittered.delay(1, None) <= 4 for _ in range(20))


def test_token_is_cached_and_refreshed_once_on_401() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if len(seen) == 2:
            return httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})
        return httpx.Response(200, json={"ok": True})

    cred = Cred()
    with client(handler, cred) as c:
        assert c.request("GET", "v1.0/a", permission="P") == {"ok": True}
        assert c.request("GET", "v1.0/b", permission="P") == {"ok": True}
    assert seen == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]
    assert cred.calls == 2


def test_401_twice_and_403_are_access_denied_naming_the_permission() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        status = 401 if request.url.path.endswith("a") else 403
        return httpx.Response(status, json={"error": {"code": "Denied", "message": "nope"}})

    with client(handler) as c:
        with pytest.raises(AccessDenied) as e401:
            c.request("GET", "v1.0/a", permission="Some.Permission")
        with pytest.raises(AccessDenied) as e403:
            c.request("GET", "v1.0/b?$filter=x", permission="Other.Permission")
    assert e401.value.status == 401 and "Some.Permission" in str(e401.value)
    assert str(e403.value) == (
        "Graph GET v1.0/b was refused (HTTP 403) (Denied: nope): the app needs Other.Permission"
    )


def test_transport_errors_are_retried_then_reported() -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"value": []})

    sleeps: list[float] = []
    with client(flaky, sleeps=sleeps) as c:
        assert c.request("GET", "x", permission="P") == {"value": []}
    assert sleeps == [1.0, 2.0]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with client(down, attempts=3) as c, pytest.raises(ServiceUnavailable) as err:
        c.request("GET", "v1.0/thing", permission="P")
    assert "still failing after 3 attempts (ReadTimeout: timed out)" in str(err.value)


def test_other_client_errors_are_not_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(400, json={"error": {"code": "BadRequest", "message": "bad $filter"}})

    with client(handler) as c, pytest.raises(ApiError) as err:
        c.request("GET", "x", permission="P")
    assert calls["n"] == 1
    assert err.value.status == 400 and err.value.service_message == "bad $filter"


def test_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [1], "@odata.nextLink": "https://evil.test/x"})

    with client(handler) as c:
        pages = c.pages("GET", "v1.0/items", permission="P")
        assert next(pages)[0] == [1]
        with pytest.raises(CollectError, match="refusing to send the token"):
            next(pages)


def test_next_link_on_a_sibling_host_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "graph.example.test":
            return httpx.Response(200, json={"value": [1],
                                             "@odata.nextLink": "https://eu.example.test/p2"})  # fmt: skip
        return httpx.Response(200, json={"value": [2]})

    with client(handler) as c:
        assert [v for v, _ in c.pages("GET", "v1.0/items", permission="P")] == [[1], [2]]


def test_a_page_without_value_is_an_error() -> None:
    c = client(lambda r: httpx.Response(200, json={"items": []}))
    with c, pytest.raises(ServiceUnavailable, match="without a 'value' list"):
        list(c.pages("GET", "v1.0/items", permission="P"))


def test_credential_errors_are_redacted_and_unchained() -> None:
    secret = "abc~Def.ghi_JKL-123"
    register_secret(secret)
    cred = Cred(fail=ValueError(f"AADSTS7000215: bad secret {secret}\nmore lines"))
    with client(lambda r: httpx.Response(200), cred) as c, pytest.raises(
        AuthenticationFailed
    ) as err:
        c.request("GET", "x", permission="P")
    assert secret not in str(err.value) and "***" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_redact_tokens_and_bearer_values() -> None:
    jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOi.eyJhdWQiOiJodHRwczovL2dyYXBo.c2lnbmF0dXJlLXZhbHVl"
    assert redact(f"token {jwt} here") == "token *** here"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"


def test_the_network_guard_tells_loopback_from_the_internet() -> None:
    from collect.conftest import _local

    assert _local("127.0.0.1") and _local("::1") and _local("localhost") and _local("127.8.9.1")
    assert not _local("graph.microsoft.com") and not _local("20.190.151.7")
    assert not _local("10.0.0.1") and not _local("192.168.1.1")
