"""The SSE service's image installs the built wheel and runs its console script, as pip users do."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.deploy.test_compose import _instructions

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "sse_service" / "Dockerfile"


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for op, rest in _instructions(DOCKERFILE):
        if op == "FROM":
            stages.append([])
        stages[-1].append((op, rest))
    return stages


def test_the_final_stage_installs_the_wheel_and_copies_no_source() -> None:
    *_, final = _stages()
    copies = [rest for op, rest in final if op == "COPY"]
    assert not any("sse_service/" in rest and "requirements.txt" not in rest for rest in copies), copies
    assert any(rest.startswith("--from=build") for rest in copies), copies
    installs = [rest for op, rest in final if op == "RUN" and "pip install" in rest]
    assert installs and all(".whl" in rest for rest in installs), installs


def test_the_build_stage_copies_what_the_package_metadata_names() -> None:
    build, *_ = _stages()
    copied = " ".join(rest for op, rest in build if op == "COPY").split()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for needed in ("pyproject.toml", project["readme"], *project["license-files"]):
        assert needed in copied, needed


def test_the_command_is_the_console_script_of_the_package() -> None:
    *_, final = _stages()
    (command,) = [rest for op, rest in final if op == "CMD"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert command.split(",")[0].strip('[" ') in scripts
