"""The versions both distributions declare are the ones `make test` and `make matrix` run them on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.package.conftest import REPO

# Where each distribution is built from.
PROJECTS = {"django-sse-push": REPO / "django_site", "sse-push-service": REPO}
# The Pythons the suite runs on: Debian 12's (the host's `make test`) and Debian 13's (`make matrix`).
TESTED_PYTHONS = {"3.11", "3.13"}
# The Django pins: the host's, and the matrix's Django 6 leg's.
DJANGO_PINS = (REPO / "django_site" / "requirements.txt", REPO / "django_site" / "requirements-django6.txt")


def _project(name: str) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((PROJECTS[name] / "pyproject.toml").read_text())["project"]
    return project


def _django_pin(path: Path) -> str:
    (pin,) = re.findall(r"^Django==(\S+)$", path.read_text(), re.MULTILINE)
    return pin


def _classified(project: dict[str, Any], prefix: str) -> set[str]:
    return {c.removeprefix(prefix) for c in project["classifiers"] if re.fullmatch(rf"{prefix}\d+\.\d+", c)}


def test_a_django_6_project_can_install_the_app() -> None:
    """A Django 6 project could not install django-sse-push: pip's ResolutionImpossible, because the
    app required Django>=5.2,<6 a year after Django 6.0 came out. Every Django the matrix passes
    is in the range now, and so is the Python Django 6 needs."""
    project = _project("django-sse-push")
    (django,) = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "Django"]
    for path in DJANGO_PINS:
        assert django.specifier.contains(_django_pin(path)), path.name
    assert SpecifierSet(project["requires-python"]).contains("3.13")


def test_the_classifiers_name_exactly_the_versions_the_suite_runs_on() -> None:
    for name in PROJECTS:
        project = _project(name)
        assert _classified(project, "Programming Language :: Python :: ") == TESTED_PYTHONS, name
        assert all(SpecifierSet(project["requires-python"]).contains(v) for v in TESTED_PYTHONS), name
    tested_djangos = {".".join(_django_pin(path).split(".")[:2]) for path in DJANGO_PINS}
    assert _classified(_project("django-sse-push"), "Framework :: Django :: ") == tested_djangos
