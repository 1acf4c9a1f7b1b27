"""Suite-wide guards: no provider API keys and no network beyond loopback.

* ``no_api_keys`` (autouse) removes every provider key from ``os.environ`` for each test, so
  no test can reach a paid API by accident or depend on a developer's shell.
* A session-wide guard makes ``socket.socket.connect``/``connect_ex`` (and so
  ``socket.create_connection``, httpx, urllib, asyncio) raise :class:`NetworkBlockedError` for
  any address that is not loopback or a unix socket.  libzmq (kernels) does not use Python
  sockets and loopback is allowed anyway, so Jupyter kernels started by tests are unaffected.
  Set ``ALLOY_NB_ALLOW_NETWORK=1`` to switch the guard off for a local experiment.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator

import pytest

from alloy_nb.testing.env import API_KEY_ENV_VARS

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkBlockedError(RuntimeError):
    """Raised when a test tries to connect to a non-loopback address."""


def _is_allowed(address: object) -> bool:
    if isinstance(address, (str, bytes, bytearray)):  # AF_UNIX path or abstract socket
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0].lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a DNS name: never resolve it, just refuse
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _guarded(original):
    def method(self: socket.socket, address, *args, **kwargs):
        if self.family != getattr(socket, "AF_UNIX", object()) and not _is_allowed(address):
            raise NetworkBlockedError(
                f"tests may only connect to loopback; blocked connect to {address!r} "
                "(set ALLOY_NB_ALLOW_NETWORK=1 to allow)"
            )
        return original(self, address, *args, **kwargs)

    method.__name__ = original.__name__
    method.__doc__ = original.__doc__
    return method


@pytest.fixture(scope="session", autouse=True)
def _loopback_only_network() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    # Keys must not leak into subprocesses started from session fixtures (Jupyter servers).
    for name in API_KEY_ENV_VARS:
        mp.delenv(name, raising=False)
    if os.environ.get("ALLOY_NB_ALLOW_NETWORK") != "1":
        mp.setattr(socket.socket, "connect", _guarded(socket.socket.connect))
        mp.setattr(socket.socket, "connect_ex", _guarded(socket.socket.connect_ex))
    try:
        yield
    finally:
        mp.undo()


@pytest.fixture(autouse=True)
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove provider API keys from the environment for the duration of each test."""
    for name in API_KEY_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
