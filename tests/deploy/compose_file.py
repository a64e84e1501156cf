"""Compose files read as Compose reads them, with no Compose installed: the same on every Debian.

Each file is parsed (PyYAML: anchors and `<<` merge keys), interpolated from an env file (`${VAR}`,
`${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+other}`, `${VAR+other}`,
`$VAR`; `$$` is a `$`), validated against the Compose Specification's JSON schema (vendored in
compose-spec/ with its licence), and brought to one shape: environments (empty if none) and
`depends_on` as mappings,
`build` contexts and relative bind mounts as absolute paths, short port syntax as mappings. Later
files are merged over earlier ones as `docker compose -f a -f b` does: mappings key by key,
`command`, `entrypoint` and a healthcheck's `test` replaced, other sequences extended.

Where Compose v2 is installed, tests/deploy also runs its `config` and compares.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA = Path(__file__).with_name("compose-spec") / "compose-spec.json"
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<unclosed>\{))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)
_REPLACED = {"command", "entrypoint", "test"}


class ComposeFileError(ValueError):
    """A compose file Compose would refuse: bad YAML, a bad interpolation, or a schema violation."""


@cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Of an error among alternatives (`depends_on` as a list or a mapping), the one that got furthest
    into the file: it names the actual mistake."""
    while error.context:
        error = max(error.context, key=lambda alternative: len(alternative.absolute_path))
    return error


def validate(config: Mapping[str, Any], source: str) -> None:
    """Raises ComposeFileError naming each place where `config` breaks the Compose Specification."""
    errors = [_deepest(error) for error in _validator().iter_errors(config)]
    if errors:
        lines = sorted(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors)
        raise ComposeFileError(f"{source} breaks the Compose Specification:\n" + "\n".join(lines))


def _interpolate_str(text: str, env: Mapping[str, str], source: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = None if match["unclosed"] else _BRACED.fullmatch(match["braced"])
        if braced is None:
            raise ComposeFileError(f"{source}: invalid interpolation {match[0]!r}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        value = env.get(name)
        if op is None:
            return value or ""
        # With the colon, an empty value counts as unset.
        is_set = bool(value) if op.startswith(":") else value is not None
        if op.endswith("-"):
            return value if is_set and value is not None else arg
        if op.endswith("?"):
            if not is_set or value is None:
                raise ComposeFileError(f"{source}: {name} is required: {arg}")
            return value
        return arg if is_set else ""

    return _REFERENCE.sub(replace, text)


def _interpolate(node: Any, env: Mapping[str, str], source: str) -> Any:
    if isinstance(node, str):
        return _interpolate_str(node, env, source)
    if isinstance(node, dict):
        return {key: _interpolate(value, env, source) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(item, env, source) for item in node]
    return node


def _mapping(value: Any, default: Any) -> dict[str, Any]:
    """A list of names (`["a", "b"]`) or a mapping, as a mapping; a name's value is `default`."""
    if isinstance(value, list):
        return {item: default for item in value}
    return {key: default if item is None else item for key, item in (value or {}).items()}


def _environment(value: Any) -> dict[str, str | None]:
    if isinstance(value, list):
        pairs = [item.partition("=") for item in value]
        return {name: text if equals else None for name, equals, text in pairs}
    return {key: None if item is None else str(item) for key, item in (value or {}).items()}


def _bind_source(spec: str, project: Path) -> str:
    source, colon, rest = spec.partition(":")
    if colon and source.startswith((".", "~")):
        return os.path.normpath(project / Path(source).expanduser()) + ":" + rest
    return spec


def _port(spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    published, _, target = spec.rpartition(":")
    target, _, protocol = target.partition("/")
    return {"mode": "ingress", "target": int(target), "published": published, "protocol": protocol or "tcp"}


def _normalise_service(service: dict[str, Any], project: Path) -> dict[str, Any]:
    service = dict(service)
    service["environment"] = _environment(service.get("environment"))
    if "depends_on" in service:
        service["depends_on"] = _mapping(service["depends_on"], {"condition": "service_started"})
    if "networks" in service:
        service["networks"] = _mapping(service["networks"], {})
    if "build" in service:
        build = service["build"]
        build = {"context": build} if isinstance(build, str) else dict(build)
        build["context"] = os.path.normpath(project / build.get("context", "."))
        service["build"] = build
    if "volumes" in service:
        service["volumes"] = [
            _bind_source(v, project) if isinstance(v, str) else v for v in service["volumes"]
        ]
    if "ports" in service:
        service["ports"] = [_port(p) for p in service["ports"]]
    return service


def _merge(base: Any, override: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = _merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        return base + [item for item in override if item not in base]
    return override


def read(path: Path, env: Mapping[str, str], project: Path) -> dict[str, Any]:
    """One file: parsed, interpolated, validated, then in the one shape (see the module docstring)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ComposeFileError(f"{path}: {error}") from error
    if not isinstance(raw, dict):
        raise ComposeFileError(f"{path}: a compose file is a mapping")
    config: dict[str, Any] = _interpolate(raw, env, str(path))
    validate(config, str(path))
    services = config.get("services") or {}
    return {**config, "services": {name: _normalise_service(s, project) for name, s in services.items()}}


def load(files: Sequence[Path], env: Mapping[str, str]) -> dict[str, Any]:
    """The files merged in order, as `docker compose -f FILE... --env-file` sees them; the first
    file's directory is the project directory, against which relative paths resolve."""
    project = files[0].parent
    config: dict[str, Any] = {}
    for path in files:
        config = _merge(config, read(path, env, project))
    validate(config, " + ".join(path.name for path in files))
    return config
