"""A local Redis Cluster on loopback ports: slots, replicas and failover for tests, stacks and the bench.

With `own_addresses`, each node listens on, and connects from, a loopback address of its own
(127.0.1.N): inside a network namespace of a test's own, one node can then be cut off from all the
others, its clients and its cluster bus alike (`devstack.netns.Loopbacks`).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from .processes import Process, StartError, free_port, wait_until

SLOTS = 16384
# Each node also listens on its port + 10000 for the cluster bus, so that port must be free too.
BUS_OFFSET = 10000


@dataclass
class RedisCluster:
    run_dir: Path
    masters: int = 3
    replicas_per_master: int = 1
    own_addresses: bool = False
    # Chosen here, as RedisServer's port is, so `startup_nodes` can go into others' env before start().
    ports: list[int] = field(init=False)
    nodes: dict[int, Process] = field(init=False, default_factory=dict)
    # Each node's address, by port.
    address_of: dict[int, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        taken: set[int] = set()
        self.ports = []
        for _ in range(self.masters * (1 + self.replicas_per_master)):
            port = cluster_port(taken)
            taken |= {port, port + BUS_OFFSET}
            self.ports.append(port)
            self.address_of[port] = f"127.0.1.{len(self.ports)}" if self.own_addresses else "127.0.0.1"

    @property
    def reserved_ports(self) -> set[int]:
        """The nodes' ports and bus ports: free now, but not for anyone else to take before start()."""
        return {*self.ports, *(port + BUS_OFFSET for port in self.ports)}

    @property
    def startup_nodes(self) -> str:
        """Every node, as SSE_REDIS_CLUSTER_NODES and Django's REDIS_CLUSTER_NODES take them."""
        return ",".join(f"{self.address_of[port]}:{port}" for port in self.ports)

    def client(self) -> redis.RedisCluster:
        """Bootstraps from one live node; it learns the rest, and follows MOVED after failovers."""
        port = self._live_port()
        return redis.RedisCluster(host=self.address_of[port], port=port, socket_timeout=5)

    def start(self) -> RedisCluster:
        try:
            for port in self.ports:
                self.nodes[port] = self._start_node(port)
            addresses = self.startup_nodes.split(",")
            args = ["redis-cli", "--cluster", "create", *addresses]
            args += ["--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
            result = subprocess.run(args, capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                raise StartError(f"redis-cli --cluster create failed:\n{result.stdout}{result.stderr}")
            # redis-cli returns once the nodes agree on the slots; replicas may still be syncing.
            wait_until(_polled(self._settled), 30, "the Redis Cluster to settle")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, port: int) -> Process:
        node_dir = self.run_dir / f"redis-{port}"
        node_dir.mkdir(parents=True, exist_ok=True)
        address = self.address_of[port]
        args = ["redis-server", "--port", str(port), "--bind", address, "--dir", str(node_dir)]
        if self.own_addresses:
            args += ["--bind-source-addr", address, "--protected-mode", "no"]
        args += ["--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf")]
        # Short, so a dead master is noticed (and failover tests run) within seconds.
        args += ["--cluster-node-timeout", "2000", "--appendonly", "yes", "--save", ""]
        # Replicas sync at once, not after the default 5 s wait for more replicas to share the transfer.
        args += ["--repl-diskless-sync-delay", "0"]
        process = Process.start(f"redis-{port}", args, self.run_dir)
        pong = _polled(lambda: bool(self._command(port, "PING")))
        wait_until(pong, 10, f"redis-server on port {port}", process)
        return process

    def _settled(self) -> bool:
        replicas = sum(role == "slave" for _, role, _ in self._topology(self.ports[0]))
        if replicas != len(self.ports) - self.masters or not self._agreed(self.ports):
            return False
        for port in self.ports:
            info = self._cluster_info(port)
            if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != len(self.ports):
                return False
            if sum(end - start + 1 for start, end, _ in self._slot_map(port)) != SLOTS:
                return False
            replication = self._info(port, "replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def master_ports(self) -> list[int]:
        """The masters now, from the cluster's slot map: failovers change the start-up layout."""
        return sorted({master for _, _, master in self._slot_map(self._live_port())})

    def master_of_key(self, key: str) -> int:
        slot = key_slot(key.encode())
        return _owner(self._slot_map(self._live_port()), slot)

    def failover(self, master_port: int) -> int:
        """A manual CLUSTER FAILOVER on one of the master's replicas; returns the new master's port,
        once every live node routes the old master's slots to it."""
        replicas = [
            int(value["port"])
            for name, value in self._info(master_port, "replication").items()
            if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
        ]
        replicas = [port for port in replicas if port in self.nodes and self.nodes[port].running]
        if not replicas:
            raise StartError(f"no live replica of the master on port {master_port} to fail over to")
        new = replicas[0]
        owned = self._owned(master_port)
        self._command(new, "CLUSTER", "FAILOVER")

        def moved() -> bool:
            if self._info(new, "replication")["role"] != "master":
                return False
            if self._info(master_port, "replication")["role"] != "slave":
                return False
            if not self._agreed(self._live_ports()):
                return False
            for port in self._live_ports():
                slot_map = self._slot_map(port)
                if self._cluster_info(port)["cluster_state"] != "ok":
                    return False
                if any(_owner(slot_map, slot) != new for range_ in owned for slot in range_):
                    return False
            return True

        wait_until(_polled(moved), 30, f"failover from port {master_port} to {new}")
        return new

    def migrate_slot(self, key: str, to_port: int) -> int:
        """Moves the slot of `key`, with its keys, to the master on `to_port` as resharding does
        (IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE); returns the slot's former owner."""
        slot = key_slot(key.encode())
        source = self.master_of_key(key)
        source_id, target_id = (
            self._command(source, "CLUSTER", "MYID"),
            self._command(to_port, "CLUSTER", "MYID"),
        )
        self._command(to_port, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        self._command(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        while keys := self._command(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "100"):
            target = self.address_of[to_port]
            self._command(source, "MIGRATE", target, str(to_port), "", "0", "5000", "KEYS", *keys)
        for port in (to_port, source):
            self._command(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        wait_until(_polled(lambda: self.master_of_key(key) == to_port), 10, f"slot {slot} on port {to_port}")
        return source

    def kill_master(self, master_port: int) -> int:
        """SIGKILLs a master; returns the port of the replica the cluster promotes in its place, once
        every live node routes the dead master's slots to it."""
        owned = self._owned(master_port)
        self.kill(master_port)
        promoted: set[int] = set()

        def taken_over() -> bool:
            live = self._live_ports()
            owners = {_owner(self._slot_map(port), start) for port in live for start, _ in owned}
            if len(owners) != 1 or master_port in owners:
                return False
            promoted.update(owners)
            return all(self._cluster_info(port)["cluster_state"] == "ok" for port in live)

        wait_until(_polled(taken_over), 30, f"a replica to take over from port {master_port}")
        return promoted.pop()

    def kill(self, port: int) -> None:
        self.nodes[port].kill()

    def stop(self) -> None:
        for process in self.nodes.values():
            process.stop()

    def _owned(self, master_port: int) -> list[tuple[int, int]]:
        return [(start, end) for start, end, owner in self._slot_map(master_port) if owner == master_port]

    def _live_ports(self) -> list[int]:
        return [port for port, process in self.nodes.items() if process.running]

    def _live_port(self) -> int:
        live = self._live_ports()
        if not live:
            raise StartError("no Redis Cluster node is running")
        return live[0]

    def _command(self, port: int, *args: str) -> Any:
        with redis.Redis(self.address_of[port], port, socket_timeout=5, decode_responses=True) as node:
            return node.execute_command(*args)

    def _info(self, port: int, section: str) -> dict[str, Any]:
        info: dict[str, Any] = self._command(port, "INFO", section)
        return info

    def _cluster_info(self, port: int) -> dict[str, str]:
        text: str = self._command(port, "CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _agreed(self, ports: list[int]) -> bool:
        """Whether these nodes see the same masters and replicas. A node that still takes a new replica
        for a master denies it the vote a CLUSTER FAILOVER needs (seen a quarter second after create)."""
        return len({self._topology(port) for port in ports}) == 1

    def _topology(self, port: int) -> frozenset[tuple[str, str, str]]:
        """(node id, master or slave, its master's id) for each node, from CLUSTER NODES at `port`."""
        lines = [line.split() for line in self._command(port, "CLUSTER", "NODES").splitlines()]
        roles = [(fields[0], set(fields[2].split(",")) & {"master", "slave"}, fields[3]) for fields in lines]
        return frozenset((node, role, master) for node, flags, master in roles for role in flags)

    def _slot_map(self, port: int) -> list[tuple[int, int, int]]:
        """(first slot, last slot, master's port) for each range, as the node at `port` sees them."""
        return [
            (int(entry[0]), int(entry[1]), int(entry[2][1]))
            for entry in self._command(port, "CLUSTER", "SLOTS")
        ]


def _owner(slot_map: list[tuple[int, int, int]], slot: int) -> int:
    for start, end, master in slot_map:
        if start <= slot <= end:
            return master
    raise LookupError(f"no node serves slot {slot}")


def _polled(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, with a node not answering (yet) or a slot map in flux counted as not ready, not as failure."""

    def polled() -> bool:
        try:
            return check()
        except (redis.ConnectionError, redis.TimeoutError, LookupError):
            return False

    return polled


def cluster_port(taken: set[int]) -> int:
    """A free port whose bus port (+10000) is free as well, and neither already handed out."""
    for _ in range(1000):
        port = free_port()
        ports = {port, port + BUS_OFFSET}
        if port + BUS_OFFSET < 65536 and not ports & taken and _bindable(port + BUS_OFFSET):
            return port
    raise StartError("found no free port pair for a Redis Cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
