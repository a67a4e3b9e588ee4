"""Fixtures for the collector tests: a fake tenant on 127.0.0.1, a local DNS server, a fake
credential, and a guard that fails any test trying to reach beyond the loopback."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from pytest_httpserver import HTTPServer

from collect.fake_tenant import END, TENANT_ID, FakeDns, FakeTenant
from dsguard.collect import (
    EXCHANGE_SCOPE,
    GRAPH_SCOPE,
    CollectConfig,
    DnsSettings,
    RetryPolicy,
    SliceRule,
)

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def _local(host: Any) -> bool:
    if not isinstance(host, str):
        return True
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection, datagram or name lookup beyond the loopback fails the test."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _local(address[0]):
            raise AssertionError(f"test tried to reach {address[0]} (only 127.0.0.1 allowed)")

    def connect(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> Any:
        check(args[-1])
        return real_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _local(host if isinstance(host, str) else host.decode()):
            raise AssertionError(f"test tried to resolve {host!r} (only 127.0.0.1 allowed)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="module")
def http_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def tenant(http_server: HTTPServer) -> Iterator[FakeTenant]:
    http_server.clear()
    yield FakeTenant(http_server)
    http_server.clear()


@pytest.fixture(scope="module")
def dns_server() -> Iterator[FakeDns]:
    server = FakeDns()
    server.start()
    yield server
    server.stop()


class FakeCredential:
    """The azure-identity ``TokenCredential`` protocol, with no identity service behind it."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"tok:{scopes[0]}", int(time.time()) + 3600)


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def sleeps() -> list[float]:
    """Every back-off the collector asked for, instead of waiting."""
    return []


@pytest.fixture
def make_config(
    tenant: FakeTenant, dns_server: FakeDns, sleeps: list[float], tmp_path: Path
) -> Callable[..., CollectConfig]:
    def build(**overrides: Any) -> CollectConfig:
        values: dict[str, Any] = {
            "tenant": TENANT_ID,
            "out": tmp_path / "bundle",
            "days": 3,
            "end": END,
            "graph_url": tenant.url,
            "exchange_url": tenant.url,
            "graph_scope": GRAPH_SCOPE,
            "exchange_scope": EXCHANGE_SCOPE,
            "dns": DnsSettings(servers=(dns_server.address,), timeout=2.0),
            "slices": SliceRule(row_cap=50),
            "signins_per_request": 1,
            "retry": RetryPolicy(attempts=4, jitter=False, sleep=sleeps.append),
            "timeout": 10.0,
        }
        values.update(overrides)
        return CollectConfig(**values)

    return build
