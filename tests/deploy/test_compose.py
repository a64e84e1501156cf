"""docker-compose.yml validates, references files that exist, wires each service, and its nginx config loads.

No Docker engine runs here: the files are read as Compose reads them and validated against the Compose
Specification's schema (compose_file.py; test_compose_file.py also runs Compose v2 where installed), and
nginx -t checks the config the official image would render from the compose environment.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from devstack.processes import free_port
from devstack.services import nginx_template_values

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "nginx" / "nginx.conf.template"
RENDER_SH = REPO / "nginx" / "render.sh"
SERVICES = {"postgres", "redis", "sse", "django", "relay", "nginx"}
# Environment the outbox relay has that the site has not, and the reverse.
RELAY_ONLY = {"DJANGO_PREPARE"}
SITE_ONLY = {"DJANGO_DEMO_USERS", "FORWARDED_ALLOW_IPS"}
# Both services must read the same values for these (docs/wire-contract.md).
CONTRACT_VARS = ("SSE_KEY_PREFIX", "SSE_MAX_PAYLOAD_BYTES", "SSE_PUBLIC_PREFIXES")

# The official image's 20-envsubst-on-templates.sh, reduced to the lines that render a template
# (its awk program moved into a variable, unchanged).
IMAGE_ENVSUBST = r"""
filter="${NGINX_ENVSUBST_FILTER:-}"
program="END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }"
defined_envs=$(printf '${%s} ' $(awk "$program" < /dev/null ))
envsubst "$defined_envs" < "$1" > "$2"
"""
# Variables the image itself sets, which the filter must keep out of the template.
IMAGE_ENV = {
    "HOSTNAME": "0123456789ab",
    "HOME": "/root",
    "NGINX_VERSION": "1.27.5",
    "NJS_VERSION": "0.8.10",
    "PKG_RELEASE": "1~bookworm",
}

Config = Callable[..., dict[str, Any]]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined: list[str] = []
    current = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [(op.upper(), rest.strip()) for op, _, rest in (line.partition(" ") for line in joined)]


def _image_files(context: Path, dockerfile: Path) -> tuple[dict[PurePosixPath, Path], list[str]]:
    """Map image paths to the context paths COPY puts there; also return the final WORKDIR and CMD words."""
    copied: dict[PurePosixPath, Path] = {}
    workdir = PurePosixPath("/")
    words: list[str] = []
    for op, rest in _instructions(dockerfile):
        if op == "WORKDIR":
            workdir = workdir / rest
        elif op == "COPY" and "--from=" not in rest:  # from the context, not from a build stage
            *sources, dest = [w for w in shlex.split(rest) if not w.startswith("--")]
            for source in sources:
                path = context / source
                assert path.exists(), f"{dockerfile.name} copies missing {source}"
                target = workdir / dest
                if dest.endswith("/") and path.is_file():
                    target = target / path.name
                copied[target] = path
        elif op in ("ENTRYPOINT", "CMD"):
            words += json.loads(rest)
    return copied, [str(workdir), *words]


def _in_image(copied: dict[PurePosixPath, Path], path: PurePosixPath) -> bool:
    for target, source in copied.items():
        if source.is_file() and path == target:
            return True
        if source.is_dir() and path.is_relative_to(target):
            return (source / path.relative_to(target)).is_file()
    return False


def _volume(spec: str) -> tuple[str, str, bool]:
    source, target, *mode = spec.split(":")
    return source, target, mode == ["ro"]


def _duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", text))


def _render_sh_vars() -> set[str]:
    match = re.search(r'^vars="([^"]*)"', RENDER_SH.read_text(), re.MULTILINE)
    assert match, "render.sh has no vars= line"
    return set(match.group(1).split())


def test_config_validates_with_a_clean_environment(compose_config: Config) -> None:
    """Every variable unset: each has a default, and the result still meets the schema."""
    assert compose_config()["services"]


def test_config_lists_exactly_the_services(compose_config: Config) -> None:
    assert set(compose_config()["services"]) == SERVICES


def test_compose_file_has_no_version_key() -> None:
    assert not re.search(r"^version\s*:", (REPO / "docker-compose.yml").read_text(), re.MULTILINE)


def test_build_files_exist(compose_config: Config) -> None:
    """Contexts, Dockerfiles, COPY sources, requirements, entrypoint scripts and the app modules run."""
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    built = {name: s["build"] for name, s in compose_config()["services"].items() if "build" in s}
    assert set(built) == {"sse", "django", "relay"}
    for name, build in built.items():
        context = Path(build["context"])
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        copied, (workdir, *command) = _image_files(context, dockerfile)
        for source in copied.values():
            rel = source.relative_to(context).as_posix()
            assert not any(fnmatch.fnmatch(rel, p) for p in ignored), f".dockerignore drops {rel}"
        for op, rest in _instructions(dockerfile):
            for requirements in re.findall(r"-r\s+(\S+)", rest) if op == "RUN" else []:
                path = PurePosixPath(workdir) / requirements
                assert _in_image(copied, path), f"{name}: {requirements} is not copied before pip"
        for word in command:
            if word.endswith(".sh"):
                assert _in_image(copied, PurePosixPath(workdir) / word), f"{name}: {word} missing"
            elif re.fullmatch(r"[\w.]+:\w+", word):
                module = word.split(":")[0].replace(".", "/") + ".py"
                assert _in_image(copied, PurePosixPath(workdir) / module), f"{name}: {module} missing"


def test_bind_mounts_exist_and_the_template_renders_to_the_main_config(compose_config: Config) -> None:
    nginx = compose_config()["services"]["nginx"]
    binds = [_volume(v) for v in nginx["volumes"] if _volume(v)[0].startswith("/")]
    for source, _, _ in binds:
        assert Path(source).exists(), source
    assert (str(TEMPLATE), "/etc/nginx/templates/nginx.conf.template", True) in binds
    # The image writes templates/X.template to $NGINX_ENVSUBST_OUTPUT_DIR/X.
    assert nginx["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"


def test_template_variables_match_render_sh_and_the_image_filter(
    compose_config: Config, template_vars: set[str]
) -> None:
    assert template_vars == _render_sh_vars()
    env = compose_config()["services"]["nginx"]["environment"]
    names = set(env) | set(IMAGE_ENV) | {"PATH"}
    assert {n for n in names if re.search(env["NGINX_ENVSUBST_FILTER"], n)} == template_vars


def test_nginx_gets_every_template_variable(compose_config: Config, template_vars: set[str]) -> None:
    env = compose_config()["services"]["nginx"]["environment"]
    assert {v for v in template_vars if env.get(v)} == template_vars


def test_services_get_their_settings(compose_config: Config) -> None:
    services = compose_config()["services"]
    sse, django = services["sse"]["environment"], services["django"]["environment"]
    assert sse["SSE_REDIS_URL"]
    for name in ("REDIS_URL", "DJANGO_ALLOWED_HOSTS", "DJANGO_STATIC_ROOT", "DJANGO_DATABASE_PATH"):
        assert django[name], name
    # Present but empty by default: the entrypoint then generates and keeps a key.
    assert "DJANGO_SECRET_KEY" in django


def test_django_and_its_relay_share_the_postgresql_database(compose_config: Config) -> None:
    for env_file in ({}, {"POSTGRES_DB": "site", "POSTGRES_USER": "web", "POSTGRES_PASSWORD": "s3cret"}):
        services = compose_config(env_file)["services"]
        django, relay = services["django"]["environment"], services["relay"]["environment"]
        postgres = services["postgres"]["environment"]
        assert postgres["POSTGRES_DB"] == env_file.get("POSTGRES_DB", "sse")
        assert django["DATABASE_URL"] == (
            f"postgres://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/"
            f"{postgres['POSTGRES_DB']}"
        )
        assert {k: v for k, v in relay.items() if k not in RELAY_ONLY} == {
            k: v for k, v in django.items() if k not in SITE_ONLY
        }
    # The relay starts once the site has migrated, and neither migrates nor collects static files.
    assert relay["DJANGO_PREPARE"] == "false"
    assert "sse_relay" in services["relay"]["command"]


def test_both_services_read_the_same_contract_values(compose_config: Config) -> None:
    custom = {
        "SSE_KEY_PREFIX": "site7",
        "SSE_MAX_PAYLOAD_BYTES": "1024",
        "SSE_PUBLIC_PREFIXES": "open.,news.",
        "REDIS_URL": "redis://r:6379/3",
    }
    for env_file in ({}, custom):
        services = compose_config(env_file)["services"]
        sse, django = services["sse"]["environment"], services["django"]["environment"]
        for name in CONTRACT_VARS:
            assert sse[name] == django[name] == env_file.get(name, sse[name]), name
            assert sse[name]
        assert sse["SSE_REDIS_URL"] == django["REDIS_URL"] == env_file.get("REDIS_URL", django["REDIS_URL"])


def test_only_nginx_publishes_a_port(compose_config: Config) -> None:
    for env_file, published in (({}, 8000), ({"PORT": "9090"}, 9090)):
        services = compose_config(env_file)["services"]
        assert [name for name, s in services.items() if s.get("ports")] == ["nginx"]
        (port,) = services["nginx"]["ports"]
        assert (int(port["published"]), int(port["target"])) == (published, 80)
        assert services["nginx"]["environment"]["NGINX_LISTEN"] == "80"


def test_healthchecks_dependencies_and_restarts(compose_config: Config) -> None:
    services = compose_config()["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services["nginx"]["depends_on"]) == {"sse", "django"}
    assert set(services["sse"]["depends_on"]) == {"redis"}
    assert set(services["django"]["depends_on"]) == {"redis", "postgres"}
    assert set(services["relay"]["depends_on"]) == {"redis", "postgres", "django"}


def test_ports_agree_between_commands_healthchecks_and_upstreams(compose_config: Config) -> None:
    services = compose_config()["services"]
    nginx_env = services["nginx"]["environment"]
    for name, upstream_var in (("sse", "SSE_UPSTREAM"), ("django", "DJANGO_UPSTREAM")):
        build = services[name]["build"]
        _, (_, *command) = _image_files(Path(build["context"]), Path(build["context"]) / build["dockerfile"])
        port = command[command.index("--port") + 1]
        assert nginx_env[upstream_var] == f"{name}:{port}"
        assert f"http://127.0.0.1:{port}/" in " ".join(services[name]["healthcheck"]["test"])


def test_sse_gets_longer_to_stop_than_its_graceful_shutdown(compose_config: Config) -> None:
    sse = compose_config()["services"]["sse"]
    _, (_, *command) = _image_files(REPO, REPO / sse["build"]["dockerfile"])
    graceful = float(command[command.index("--timeout-graceful-shutdown") + 1])
    assert _duration(sse["stop_grace_period"]) > graceful


def test_volumes_persist_redis_the_database_and_share_static_files(compose_config: Config) -> None:
    config = compose_config()
    services, named = config["services"], set(config["volumes"])
    redis = services["redis"]
    assert "--appendonly" in redis["command"]
    assert any(_volume(v)[0] in named and _volume(v)[1] == "/data" for v in redis["volumes"])
    postgres = services["postgres"]["volumes"]
    assert any(_volume(v)[0] in named and _volume(v)[1] == "/var/lib/postgresql/data" for v in postgres)

    django_env = services["django"]["environment"]
    django_mounts = {target: source for source, target, _ in map(_volume, services["django"]["volumes"])}
    assert django_mounts[str(PurePosixPath(django_env["DJANGO_DATABASE_PATH"]).parent)] in named
    static = django_mounts[django_env["DJANGO_STATIC_ROOT"]]
    assert static in named
    nginx_root = services["nginx"]["environment"]["NGINX_STATIC_ROOT"]
    assert (static, nginx_root, True) in map(_volume, services["nginx"]["volumes"])


def test_render_sh_names_unset_variables(tmp_path: Path) -> None:
    out = tmp_path / "nginx.conf"
    result = subprocess.run(
        ["sh", str(RENDER_SH), str(out)],
        env={"PATH": os.environ["PATH"], "NGINX_LISTEN": "80"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "NGINX_USER" in result.stderr and "DJANGO_UPSTREAM" in result.stderr
    assert "NGINX_LISTEN" not in result.stderr
    assert not out.exists()


def test_render_sh_matches_the_official_image(
    compose_config: Config, render: Callable[..., Path], require: Callable[[str], str], tmp_path: Path
) -> None:
    require("awk")
    env = {k: v for k, v in compose_config()["services"]["nginx"]["environment"].items() if v is not None}
    ours = render(env, tmp_path / "ours.conf").read_text()
    image_out = tmp_path / "image.conf"
    subprocess.run(
        ["sh", "-c", IMAGE_ENVSUBST, "sh", str(TEMPLATE), str(image_out)],
        env={**IMAGE_ENV, **env, "PATH": os.environ["PATH"]},
        check=True,
    )
    assert ours == image_out.read_text()
    assert "${" not in ours
    for nginx_variable in ("$http_host", "$remote_addr", "$scheme"):
        assert nginx_variable in ours


def test_compose_rendered_config_passes_nginx_t(
    compose_config: Config, render: Callable[..., Path], require: Callable[[str], str], tmp_path: Path
) -> None:
    """As in the container: compose host names resolve, user nginx exists, the run dir is /var/cache/nginx."""
    nginx, unshare = require("nginx"), require("unshare")
    require("mount")
    assert os.geteuid() == 0, "run as root: this test needs unshare --mount and mount --bind"
    env = {k: v for k, v in compose_config()["services"]["nginx"]["environment"].items() if v is not None}
    conf = render(env, tmp_path / "nginx.conf")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost " + " ".join(sorted(SERVICES)) + "\n")
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text(Path("/etc/passwd").read_text() + "nginx:x:101:101:nginx:/nonexistent:/bin/false\n")
    group.write_text(Path("/etc/group").read_text() + "nginx:x:101:\n")
    run_dir = PurePosixPath(env["NGINX_RUN_DIR"])
    script = (
        'set -e; mount --bind "$1" /etc/hosts; mount --bind "$2" /etc/passwd; mount --bind "$3" /etc/group;'
        f" mount -t tmpfs tmpfs {run_dir.parent}; mkdir {run_dir};"
        f" exec {nginx} -t -c \"$4\" -g 'daemon off;'"
    )
    result = subprocess.run(
        [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(hosts),
            str(passwd),
            str(group),
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_local_rendered_config_passes_nginx_t(
    render: Callable[..., Path], require: Callable[[str], str], tmp_path: Path
) -> None:
    nginx = require("nginx")
    values = nginx_template_values(
        free_port(),
        tmp_path,
        sse_upstream=f"unix:{tmp_path / 'sse.sock'}",
        django_upstream=f"unix:{tmp_path / 'django.sock'}",
        static_root=tmp_path / "static",
    )
    conf = render(values, tmp_path / "nginx.conf")
    result = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-g", "daemon off;"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_env_example_lists_exactly_the_variables_compose_reads(compose_config: Config) -> None:
    """Those of docker-compose.yml and of its Redis Cluster override (docker-compose.cluster.yml)."""
    files = (REPO / "docker-compose.yml", REPO / "docker-compose.cluster.yml")
    interpolated = {
        name for file in files for name in re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", file.read_text())
    }
    passed_through = {
        name
        for service in compose_config(files=files)["services"].values()
        for name, value in service["environment"].items()
        if value is None
    }
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    assert listed == interpolated | passed_through
