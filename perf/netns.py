"""Network namespaces: several hosts on one machine (``ip netns``, veth, a bridge).

Each host of a :class:`Network` is a namespace with one interface,
``eth0``, whose address is in a private /24; the other end of its veth
pair is a port of a bridge that lives in a namespace of its own (the
switch). Nothing is added to the machine's own namespace: the hosts reach
each other and nothing else, and this process talks to them only from
inside one of them (:func:`entered`).

Everything here needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN). Network
namespaces are per thread: :func:`entered` moves the calling thread, and
threads and processes it starts meanwhile are born inside.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["NetnsUnavailable", "Network", "check_available", "entered", "exec_argv"]

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_COMMAND_TIMEOUT = 30


class NetnsUnavailable(RuntimeError):
    """``ip netns`` cannot be used here (not root, no iproute2, no permission)."""


def _ip(*args: str) -> None:
    completed = subprocess.run(["ip", *args], capture_output=True, text=True,
                               timeout=_COMMAND_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {completed.stderr.strip()}")


def check_available() -> None:
    """Raises :class:`NetnsUnavailable`, saying why, unless ``ip netns`` works."""
    if shutil.which("ip") is None:
        raise NetnsUnavailable("`ip` (iproute2) is not installed")
    probe = f"um-probe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except RuntimeError as exc:
        raise NetnsUnavailable(
            f"`ip netns add` failed (the multi-host tests need root): {exc}") from None
    _ip("netns", "del", probe)


def exec_argv(namespace: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside ``namespace`` (``ip netns exec`` execs it: same pid)."""
    return ["ip", "netns", "exec", namespace, *argv]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Run the calling thread inside ``namespace``, then put it back.

    Sockets keep the namespace they were made in: open connections only
    inside the block. Threads and child processes started inside it are
    born in ``namespace`` and stay there.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_DIR, namespace), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


@dataclass
class Network:
    """Hosts on one bridge: ``{role: last octet}`` in ``subnet``.

    Namespaces are named ``um-<random>-<role>`` so that runs never meet.
    Use as a context manager, or call :meth:`create` and :meth:`destroy`
    (which is safe to call after a partial :meth:`create`).
    """

    hosts: dict[str, int]
    subnet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network("10.213.0.0/24"))
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    created: list[str] = field(default_factory=list)

    def namespace(self, role: str) -> str:
        return f"um-{self.tag}-{role}"

    def address(self, role: str) -> str:
        return str(self.subnet.network_address + self.hosts[role])

    @property
    def switch(self) -> str:
        return self.namespace("switch")

    def create(self) -> Network:
        check_available()
        self._add(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "dev", "br0", "up")
        for role in self.hosts:
            namespace = self.namespace(role)
            self._add(namespace)
            _ip("-n", self.switch, "link", "add", "name", role, "type", "veth",
                "peer", "name", "eth0", "netns", namespace)
            _ip("-n", self.switch, "link", "set", "dev", role, "master", "br0")
            _ip("-n", self.switch, "link", "set", "dev", role, "up")
            _ip("-n", namespace, "addr", "add",
                f"{self.address(role)}/{self.subnet.prefixlen}", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "dev", "eth0", "up")
            _ip("-n", namespace, "link", "set", "dev", "lo", "up")
        return self

    def destroy(self) -> None:
        """Delete every namespace made (their veths and the bridge go with them)."""
        errors = []
        for namespace in reversed(self.created):
            try:
                _ip("netns", "del", namespace)
            except RuntimeError as exc:
                errors.append(str(exc))
        self.created.clear()
        if errors:
            raise RuntimeError("; ".join(errors))

    def _add(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self.created.append(namespace)

    def __enter__(self) -> Network:
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()
