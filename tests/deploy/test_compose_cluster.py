"""docker-compose.cluster.yml over docker-compose.yml: six Redis Cluster nodes, the init service, scaling sse.

Both files read, validated and merged as `docker compose -f docker-compose.yml -f
docker-compose.cluster.yml up --scale sse=3` reads them (compose_file.py). The init service's script
and the nodes' redis-server arguments run for real against six local redis-server processes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack.cluster import cluster_port
from devstack.processes import wait_until

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CLUSTER_FILE = REPO / "docker-compose.cluster.yml"
BOTH = (COMPOSE_FILE, CLUSTER_FILE)
NODES = [f"redis-node-{i}" for i in range(1, 7)]
INIT = "redis-cluster-init"
NETWORK = "redis-cluster"
# The variable each of our images reads its start-up nodes from, by the directory of its Dockerfile.
CLUSTER_VARS = {"sse_service": "SSE_REDIS_CLUSTER_NODES", "django_site": "REDIS_CLUSTER_NODES"}

Config = Callable[..., dict[str, Any]]


def _merged(compose_config: Config, env_file: dict[str, str] | None = None) -> dict[str, Any]:
    return compose_config(env_file, files=BOTH)


def _arg(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _node_addresses(config: dict[str, Any]) -> list[str]:
    return [config["services"][n]["networks"][NETWORK]["ipv4_address"] for n in NODES]


def _init_script(config: dict[str, Any]) -> list[str]:
    """The init service's command as the container runs it (`$$` already read as `$`)."""
    command: list[str] = config["services"][INIT]["command"]
    return command


def _cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout.replace("\r", "")


def _info(port: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in _cli(port, "cluster", "info").splitlines() if ":" in line)


@contextmanager
def _nodes(command: list[str], dirs: list[Path], ports: list[int]) -> Iterator[None]:
    """redis-server with a node's compose arguments, on loopback: one per port, each in its own dir."""
    args = list(command)
    args[args.index("--cluster-announce-ip") + 1] = "127.0.0.1"
    server = [shutil.which("redis-server") or "redis-server"]
    processes = [
        subprocess.Popen(
            [*server, *args[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for directory, port in zip(dirs, ports, strict=True)
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            deadline = time.monotonic() + 10
            while (
                subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout
                != b"PONG\n"
            ):
                assert process.poll() is None, f"redis-server on {port} exited with {process.returncode}"
                assert time.monotonic() < deadline, f"redis-server on {port} did not answer within 10 s"
                time.sleep(0.05)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            # A node rewriting its append-only file on a busy machine may take longer than this to
            # stop; left running, it would fail whichever later test collects its Popen.
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_both_files_validate_with_a_clean_environment(compose_config: Config) -> None:
    assert _merged(compose_config)["services"]


def test_the_override_adds_six_nodes_and_the_init_service(compose_config: Config) -> None:
    base, merged = compose_config()["services"], _merged(compose_config)["services"]
    assert sorted(merged) == sorted([*base, *NODES, INIT])


def test_cluster_file_has_no_version_key() -> None:
    assert not re.search(r"^version\s*:", CLUSTER_FILE.read_text(), re.MULTILINE)


def test_files_the_merged_config_references_exist(compose_config: Config) -> None:
    for name, service in _merged(compose_config)["services"].items():
        if "build" in service:
            context = Path(service["build"]["context"])
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
        for spec in service.get("volumes", []):
            source = spec.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), (name, source)


def test_nodes_are_cluster_enabled_persistent_and_at_fixed_addresses(compose_config: Config) -> None:
    config = _merged(compose_config)
    services, named = config["services"], set(config["volumes"])
    (ipam,) = config["networks"][NETWORK]["ipam"]["config"]
    subnet, handed_out = ipaddress.ip_network(ipam["subnet"]), ipaddress.ip_network(ipam["ip_range"])
    addresses = _node_addresses(config)
    assert len(set(addresses)) == len(NODES)
    data_volumes = []
    for name, address in zip(NODES, addresses, strict=True):
        node = services[name]
        assert node["image"] == services["redis"]["image"], name
        command = node["command"]
        assert command[0] == "redis-server", name
        assert _arg(command, "--cluster-enabled") == "yes", name
        assert _arg(command, "--appendonly") == "yes", name
        assert _arg(command, "--cluster-announce-ip") == address, name
        # Docker never hands a node's address to another container.
        assert ipaddress.ip_address(address) in subnet, name
        assert ipaddress.ip_address(address) not in handed_out, name
        (source,) = [v.split(":")[0] for v in node["volumes"] if v.split(":")[1] == "/data"]
        assert source in named and source != "redis-data", name
        data_volumes.append(source)
        assert node["healthcheck"]["test"], name
        assert node["restart"] == "unless-stopped", name
    assert len(set(data_volumes)) == len(NODES)


def test_init_forms_the_cluster_from_all_six_nodes_once_they_are_healthy(compose_config: Config) -> None:
    config = _merged(compose_config)
    init = config["services"][INIT]
    assert init["image"] == config["services"]["redis"]["image"]
    assert init["depends_on"] == {n: {"condition": "service_healthy"} for n in NODES}
    assert init["networks"] == {NETWORK: {}}
    # One-shot: a restart policy would run it again and again.
    assert init["restart"] == "no"
    nodes = init["environment"]["REDIS_CLUSTER_NODES"].split(",")
    assert nodes == [f"{a}:6379" for a in _node_addresses(config)]
    script = _init_script(config)[2]
    assert re.search(r"redis-cli --cluster create \$nodes --cluster-replicas 1 --cluster-yes", script)
    assert "nodes=$(echo \"$REDIS_CLUSTER_NODES\" | tr , ' ')" in script


def test_every_python_service_gets_the_cluster_nodes_and_waits_for_the_init(compose_config: Config) -> None:
    for env_file in ({}, {"REDIS_URL": "redis://elsewhere:6379/1"}):
        config = _merged(compose_config, env_file)
        services = config["services"]
        expected = services[INIT]["environment"]["REDIS_CLUSTER_NODES"]
        built = {name: s for name, s in services.items() if "build" in s}
        assert set(built) == {"sse", "django", "relay"}
        for name, service in built.items():
            variable = CLUSTER_VARS[Path(service["build"]["dockerfile"]).parent.as_posix()]
            assert service["environment"][variable] == expected, name
            assert service["depends_on"][INIT] == {"condition": "service_completed_successfully"}, name
            # The cluster network for Redis, the default one for nginx.
            assert set(service["networks"]) == {"default", NETWORK}, name


def test_nginx_is_unchanged_by_the_override(compose_config: Config) -> None:
    """So the nginx -t of the compose-rendered config (test_compose.py) covers the cluster stack too."""
    assert _merged(compose_config)["services"]["nginx"] == compose_config()["services"]["nginx"]


@pytest.mark.parametrize("files", [(COMPOSE_FILE,), BOTH], ids=["base", "cluster"])
def test_sse_can_be_scaled_behind_nginx(compose_config: Config, files: tuple[Path, ...]) -> None:
    """`--scale sse=N`: no fixed name, port or address; nginx reaches the replicas by the service name."""
    services = compose_config(files=files)["services"]
    sse, nginx = services["sse"], services["nginx"]
    assert "container_name" not in sse
    assert not sse.get("ports")
    for network in (sse.get("networks") or {}).values():
        assert not (network or {}).get("ipv4_address")
    host, _ = nginx["environment"]["SSE_UPSTREAM"].split(":")
    assert host == "sse"
    # Every replica is up and healthy before nginx resolves the name, so it resolves to all of them.
    assert nginx["depends_on"]["sse"] == {"condition": "service_healthy"}
    assert "default" in (sse.get("networks") or {"default": {}})
    assert not nginx.get("networks")


def test_init_script_forms_the_cluster_once_and_leaves_it_on_later_runs(
    compose_config: Config, require: Callable[[str], str], tmp_path: Path
) -> None:
    """The compose commands, run for real: six nodes on loopback, the init script three times."""
    require("redis-server")
    require("redis-cli")
    config = _merged(compose_config)
    node_command = config["services"][NODES[0]]["command"]
    script = _init_script(config)
    taken: set[int] = set()
    ports = []
    for _ in NODES:
        ports.append(cluster_port(taken))
        taken |= {ports[-1], ports[-1] + 10000}
    dirs = [tmp_path / name for name in NODES]
    for directory in dirs:
        directory.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_CLUSTER_NODES": ",".join(f"127.0.0.1:{p}" for p in ports),
    }

    def init() -> subprocess.CompletedProcess[str]:
        return subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)

    def topology() -> list[tuple[str, str]]:
        """Each node's ID and role, as the node itself says (other nodes learn roles by gossip)."""
        return [(_cli(p, "cluster", "myid").strip(), _cli(p, "role").split()[0]) for p in ports]

    with _nodes(node_command, dirs, ports):
        first = init()
        assert first.returncode == 0, first.stdout + first.stderr
        assert "forming the cluster" in first.stdout
        formed = topology()
        assert sorted(role for _, role in formed) == ["master"] * 3 + ["slave"] * 3
        for port in ports:
            info = _info(port)
            assert info["cluster_state"] == "ok"
            assert info["cluster_slots_assigned"] == "16384"
            # The nodes learn of each other by gossip, which may still be under way.
            wait_until(lambda port=port: _info(port)["cluster_known_nodes"] == "6", 10, f"node {port}")

        again = init()
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already formed" in again.stdout and "forming" not in again.stdout
        assert topology() == formed

    # As after `docker compose restart` or `down` and `up`: the same volumes, so the same nodes.conf.
    with _nodes(node_command, dirs, ports):
        restarted = init()
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert "already formed" in restarted.stdout
        assert topology() == formed
        assert all(_info(port)["cluster_state"] == "ok" for port in ports)

    # A node whose volume was emptied is alone: the init refuses rather than half-forming a cluster.
    shutil.rmtree(dirs[-1])
    dirs[-1].mkdir()
    with _nodes(node_command, dirs, ports):
        emptied = init()
        assert emptied.returncode == 1
        assert "1 of 6 nodes are in no cluster" in emptied.stderr
