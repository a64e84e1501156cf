"""Two hosts of the tests' own on this machine, and a network partition between them.

Killing a process is not what a network fault looks like: a cut link leaves both ends running and
every TCP connection open and silent, with nothing to read and no error to see. `Partition` makes two
hosts, each a Linux network namespace (`ip netns`), joined by a veth pair whose addresses exist only
inside those namespaces, and `cut` drops every packet each host gets from the other (iptables in
each namespace, so neither side's sends fail) while the processes on both sides live; `heal` lets
them through again. The tests reach what runs inside over Unix sockets, which namespaces do not
separate, and never route anything to or from the machine's own network.

`Loopbacks` is the other shape: one namespace that the test itself enters (`inside`), where processes
listen on loopback addresses of their own (127.0.1.N: a Redis Cluster's nodes, `devstack.cluster`),
and `cut_off` silences one address towards every other, so one cluster master is partitioned from
its clients and its peers alike while all of them run.

It needs root (CAP_NET_ADMIN), iproute2 and iptables (`scripts/install-system-deps test`); without
them `Partition.create` raises `NamespaceError` saying what is missing, for the test to fail with.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# setns(2)'s flag for a network namespace.
_CLONE_NEWNET = 0x40000000
# Addresses of the veth pair, inside the namespaces only: 10.254.N.1 and .2, N drawn per partition.
_NETWORK = "10.254.{}.{}"


class NamespaceError(RuntimeError):
    """A namespace, a link or a rule could not be made; the message says why."""


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str

    @property
    def launcher(self) -> tuple[str, ...]:
        """The command prefix that runs a program on this host."""
        return ("ip", "netns", "exec", self.namespace)

    def http_get(self, port: int, path: str) -> str:
        """The body of `GET path` on this host's loopback `port`, fetched from inside the host."""
        fetch = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=3).read().decode())"
        done = subprocess.run(
            [*self.launcher, sys.executable, "-c", fetch, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise OSError(f"GET {path} on {self.namespace}:{port} failed: {done.stderr.strip()[-300:]}")
        return done.stdout


@dataclass
class Partition:
    """`redis_side` and `service_side`, linked; `cut` and `heal` the link; `remove` when done."""

    redis_side: Host
    service_side: Host
    is_cut: bool = False

    @classmethod
    def create(cls) -> Partition:
        _require_tools()
        suffix = secrets.token_hex(3)
        net = 1 + secrets.randbelow(250)
        redis_side = Host(f"sse-{suffix}-r", _NETWORK.format(net, 1))
        service_side = Host(f"sse-{suffix}-s", _NETWORK.format(net, 2))
        partition = cls(redis_side, service_side)
        try:
            for host in (redis_side, service_side):
                _run("ip", "netns", "add", host.namespace)
                _run("ip", "-n", host.namespace, "link", "set", "lo", "up")
            ends = (f"vr{suffix}", f"vs{suffix}")
            _run(
                "ip", "link", "add", ends[0], "netns", redis_side.namespace,
                "type", "veth", "peer", "name", ends[1], "netns", service_side.namespace,
            )  # fmt: skip
            for host, end in zip((redis_side, service_side), ends, strict=True):
                _run("ip", "-n", host.namespace, "addr", "add", f"{host.address}/30", "dev", end)
                _run("ip", "-n", host.namespace, "link", "set", end, "up")
        except BaseException:
            partition.remove()
            raise
        return partition

    def cut(self) -> None:
        """From now on each side drops whatever arrives from the other: the link is silent both ways."""
        self._rules("-A")
        self.is_cut = True

    def heal(self) -> None:
        if self.is_cut:
            self._rules("-D")
            self.is_cut = False

    def remove(self) -> None:
        """Deletes both namespaces (and so the veth pair); stop what runs inside first."""
        for host in (self.redis_side, self.service_side):
            subprocess.run(["ip", "netns", "delete", host.namespace], capture_output=True, timeout=10)

    def _rules(self, action: str) -> None:
        for host, peer in ((self.redis_side, self.service_side), (self.service_side, self.redis_side)):
            _run(*host.launcher, "iptables", action, "INPUT", "-s", peer.address, "-j", "DROP")


@dataclass
class Loopbacks:
    """A namespace of the test's own in which loopback addresses can be cut off one by one."""

    namespace: str
    cut: set[str] = field(default_factory=set)

    @classmethod
    def create(cls) -> Loopbacks:
        _require_tools()
        made = cls(f"sse-{secrets.token_hex(3)}-l")
        try:
            _run("ip", "netns", "add", made.namespace)
            _run("ip", "-n", made.namespace, "link", "set", "lo", "up")
        except BaseException:
            made.remove()
            raise
        return made

    def cut_off(self, address: str) -> None:
        """Whatever `address` sends, and whatever is sent to it, is dropped on arrival from now on."""
        self._rules("-A", address)
        self.cut.add(address)

    def rejoin(self, address: str) -> None:
        if address in self.cut:
            self._rules("-D", address)
            self.cut.discard(address)

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.namespace], capture_output=True, timeout=10)

    def _rules(self, action: str, address: str) -> None:
        for direction in ("-s", "-d"):
            _run(
                "ip",
                "netns",
                "exec",
                self.namespace,
                "iptables",
                action,
                "INPUT",
                direction,
                address,
                "-j",
                "DROP",
            )


@contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Runs the calling thread in `namespace` (and so every process it starts), then brings it back.

    Only the calling thread moves: sockets opened from other threads (`asyncio.to_thread`) would not.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as there:
        if libc.setns(there.fileno(), _CLONE_NEWNET) != 0:
            raise NamespaceError(f"cannot enter {namespace}: {os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), _CLONE_NEWNET) != 0:
                raise NamespaceError(f"cannot leave {namespace}: {os.strerror(ctypes.get_errno())}")


_PACKAGE = {"ip": "iproute2", "iptables": "iptables"}


def _require_tools() -> None:
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            raise NamespaceError(f"{tool} not found: apt-get install {_PACKAGE[tool]}")


def _run(*args: str) -> None:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=10)
    except OSError as exc:
        raise NamespaceError(f"{' '.join(args)}: {exc}") from None
    if done.returncode != 0:
        hint = " (network namespaces need root)" if "ermission" in done.stderr else ""
        raise NamespaceError(f"{' '.join(args)} failed{hint}: {done.stderr.strip()}")
