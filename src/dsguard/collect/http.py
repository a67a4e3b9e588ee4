"""One HTTP client for Graph and the Exchange admin API: tokens, retries, typed errors.

Why one wrapper: every source needs the same behaviour, and getting it right once is easier
than five times. It retries what a later attempt can fix (429 and 5xx, honouring
``Retry-After``; timeouts; connections dropped mid-response; a 2xx body that is not JSON),
turns 401/403 into ``AccessDenied`` naming the permission the call needs, and never puts a
token or a secret in a message. The base URL and the ``httpx`` transport are injectable, so
tests point the client at a local server or a ``MockTransport``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from dsguard import __version__
from dsguard.collect.errors import (
    AccessDenied,
    ApiError,
    AuthenticationFailed,
    CollectError,
    ServiceUnavailable,
    one_line,
)

log = logging.getLogger("dsguard.collect")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_TOKEN_MARGIN = 120  # seconds before expiry when a cached token is renewed


class AccessTokenLike(Protocol):
    """What ``get_token`` returns (azure-core's ``AccessToken`` is one)."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class TokenCredential(Protocol):
    """The azure-identity credential protocol, all the collector needs from one."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up. ``sleep`` is injectable so tests do not wait."""

    attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    jitter: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; the server's word wins."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)
        return random.uniform(base / 2, base) if self.jitter else base


@dataclass(frozen=True)
class Service:
    """A service the collector calls: its display name, base URL and token scope."""

    name: str
    base_url: str
    scope: str


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def service_error(response: httpx.Response) -> tuple[str, str]:
    """``(code, message)`` from a Graph/AdminApi error body, or the start of the text."""
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        return "", one_line(response.text, 200)
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return str(err.get("code") or ""), one_line(str(err.get("message") or ""), 400)
    if isinstance(err, str):
        return err, one_line(str(doc.get("error_description") or ""), 400)
    return "", one_line(response.text, 200)


class ApiClient:
    """JSON over HTTPS for one ``Service``, with retries and typed errors (module docstring).

    ``notify`` receives one-line, secret-free notes about retries for the progress display.
    """

    def __init__(
        self,
        service: Service,
        credential: TokenCredential,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
        headers: Mapping[str, str] | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.retry = retry or RetryPolicy()
        self._credential = credential
        self._token: tuple[str, float] | None = None
        self._notify = notify or (lambda _msg: None)
        self._base = urlsplit(service.base_url)
        self._http = httpx.Client(
            base_url=service.base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=20.0),
            headers={"User-Agent": f"dsguard/{__version__}", **(headers or {})},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ tokens
    def _bearer(self) -> str:
        now = time.time()
        if self._token and self._token[1] - _TOKEN_MARGIN > now:
            return self._token[0]
        try:
            token = self._credential.get_token(self.service.scope)
        except CollectError:
            raise
        except Exception as exc:  # any credential library failure, redacted, no chain
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise AuthenticationFailed(
                f"could not get a token for {self.service.name} ({self.service.scope}): "
                f"{type(exc).__name__}: {first} — check --tenant, --client-id and the "
                "credential"
            ) from None
        self._token = (token.token, float(token.expires_on))
        return token.token

    # ------------------------------------------------------------------ requests
    def request(
        self,
        method: str,
        url: str,
        *,
        permission: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The parsed JSON body of a successful call (``None`` for an empty one).

        ``permission`` is what a 401/403 message tells the admin to grant.
        """
        what = f"{self.service.name} {method} {self._show(url)}"
        refreshed = False
        attempt = 0
        last = ""
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._send(method, url, json_body, params, headers, timeout)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {one_line(str(exc), 200) or 'connection failed'}"
            else:
                status = response.status_code
                if status in (401, 403):
                    if status == 401 and not refreshed:
                        refreshed, self._token = True, None  # a stale token gets one retry
                        attempt -= 1
                        continue
                    raise self._denied(what, response, permission)
                if 200 <= status < 300:
                    if not response.content.strip():
                        return None
                    try:
                        return response.json()
                    except (ValueError, UnicodeDecodeError) as exc:
                        last = f"malformed JSON in the response ({one_line(str(exc), 120)})"
                elif status in RETRY_STATUSES:
                    code, message = service_error(response)
                    last = f"HTTP {status}" + (f" {code}" if code else "")
                    last += f": {message}" if message else ""
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                else:
                    code, message = service_error(response)
                    raise ApiError(
                        f"{what} failed: HTTP {status}"
                        + (f" {code}" if code else "")
                        + (f": {message}" if message else ""),
                        status=status,
                        code=code,
                        service_message=message,
                    )
            if attempt >= self.retry.attempts:
                raise ServiceUnavailable(
                    f"{what} still failing after {attempt} attempts ({last}); what was "
                    "collected so far is saved: rerun the same command to continue"
                )
            delay = self.retry.delay(attempt, retry_after)
            log.info("%s: %s; retry %d in %.1fs", what, last, attempt, delay)
            self._notify(f"retrying in {delay:.0f}s: {last}")
            self.retry.sleep(delay)

    def pages(
        self,
        method: str,
        url: str,
        *,
        permission: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[tuple[list[Any], dict[str, Any]]]:
        """Each page's ``value`` and the page itself, following ``@odata.nextLink``.

        A POST (the Exchange ``InvokeCommand``) is repeated with the same body against the
        next link, as the ExchangeOnlineManagement module does. A next link to a foreign
        host is refused: it would carry our bearer token there.
        """
        next_url: str | None = url
        first = True
        while next_url:
            doc = self.request(
                method,
                next_url,
                permission=permission,
                json_body=json_body,
                params=params if first else None,
                headers=headers,
            )
            first = False
            if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
                raise ServiceUnavailable(
                    f"{self.service.name} {method} {self._show(url)} answered without a "
                    "'value' list; rerun the same command to try again"
                )
            yield doc["value"], doc
            link = doc.get("@odata.nextLink")
            next_url = self._check_link(link) if isinstance(link, str) and link else None

    # ------------------------------------------------------------------ helpers
    def _send(
        self,
        method: str,
        url: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
        all_headers.update(headers or {})
        content = None
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=20.0)
        return self._http.request(
            method, url, content=content, params=params, headers=all_headers, **extra
        )

    def _check_link(self, link: str) -> str:
        parts = urlsplit(link)
        if not parts.scheme:
            return link  # relative: stays on our base URL
        same = parts.scheme == self._base.scheme and parts.netloc == self._base.netloc
        sibling = (
            parts.scheme == "https"
            and self._base.scheme == "https"
            and _parent(parts.hostname) == _parent(self._base.hostname)
        )
        if not (same or sibling):
            raise CollectError(
                f"{self.service.name} returned a next-page link to another host "
                f"({parts.hostname}); refusing to send the token there"
            )
        return link

    def _show(self, url: str) -> str:
        """The path of ``url`` relative to the base, without the query string."""
        path = urlsplit(url).path or url
        base = self._base.path.rstrip("/")
        if base and path.startswith(base):
            path = path[len(base) :]
        return path.lstrip("/") or "/"

    def _denied(self, what: str, response: httpx.Response, permission: str) -> AccessDenied:
        code, message = service_error(response)
        status = response.status_code
        verb = "was not authenticated" if status == 401 else "was refused"
        detail = f" ({code}: {message})" if code or message else ""
        detail = detail if len(detail) < 220 else detail[:219] + "…)"
        return AccessDenied(
            f"{what} {verb} (HTTP {status}){detail}: the app needs {permission}",
            status=status,
            permission=permission,
            service_message=message,
        )


def _parent(host: str | None) -> str:
    labels = (host or "").lower().split(".")
    return ".".join(labels[-2:]) if len(labels) >= 2 else (host or "")
