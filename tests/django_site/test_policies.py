"""The policy table on Django's side: parsing as the service parses, the checks that name a bad or
a disagreeing table, and what it changes (public or private, history kept)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from pytest_django.fixtures import Settings

from devstack.processes import free_port
from devstack.services import RedisServer, SseService
from django_sse_push import policies as site_policies
from django_sse_push.checks import check_policies, check_policies_agree
from django_sse_push.permissions import is_public
from django_sse_push.publish import publish
from sse_service import policies as service_policies

TABLE = """{
  "": {"rewind_max": 5, "history": 50},
  "public.": {"public": true, "rewind_max": 50, "presence": "who", "history": 20},
  "public.room.": {"join_leave": true, "join_leave_max_members": 3, "public": true},
  "ops.": {"presence": "who"}
}"""


@pytest.fixture
def table_file(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "policies.json"
    path.write_text(TABLE)
    settings.SSE_CHANNEL_POLICIES = str(path)
    return path


@pytest.mark.parametrize(
    "text",
    [
        TABLE,
        "{}",
        '{"public.": {"public": true}}',
        '{"": {"public": true, "presence": "who"}, "a": {"public": false, "join_leave": true}}',
        '{"public.": {"public": true}, "public.ticker.": {"public": true, "write_delay_ms": 50}}',
    ],
)
def test_the_site_and_the_service_read_a_table_to_the_same_canonical_form(text: str) -> None:
    assert site_policies.parse_table(text).canonical() == service_policies.parse_table(text).canonical()


def test_both_sides_default_tables_agree_on_what_the_service_reads() -> None:
    site = site_policies.default_table(["public.", "news."], 1000).canonical()
    assert site == service_policies.default_table(["public.", "news."]).canonical()


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"public.": {"pubic": true}}',
        '{"public.": {"presence": "all"}}',
        '{"-x": {}}',
        '{"public.": {"write_delay_ms": 1001}}',
        '{"public.": {"write_delay_ms": true}}',
        '{"public.": {"write_delay_ms": "20"}}',
    ],
)
def test_both_sides_refuse_the_same_bad_tables(text: str) -> None:
    with pytest.raises(site_policies.PolicyError):
        site_policies.parse_table(text)
    with pytest.raises(service_policies.PolicyError):
        service_policies.parse_table(text)


def test_the_table_decides_which_channels_are_public(table_file: Path) -> None:
    assert is_public("public.board")
    assert not is_public("ops.board")


def test_publishing_keeps_the_history_its_prefix_says(table_file: Path, redis_client: redis.Redis) -> None:
    for n in range(30):
        publish("public.board", n)
        publish("ops.board", n)
    prefix = site_policies.push_settings().KEY_PREFIX
    # Trimmed a tenth at a time once over the length (lua/publish.lua).
    assert 18 <= redis_client.xlen(f"{prefix}:{{public.board}}:events") <= 20
    assert redis_client.xlen(f"{prefix}:{{ops.board}}:events") == 30


def test_a_table_that_does_not_parse_is_named_by_manage_py_check(table_file: Path) -> None:
    table_file.write_text('{"public.": {"public": "yes"}}')
    (problem,) = check_policies()
    assert problem.id == "django_sse_push.E012"
    assert "SSE_CHANNEL_POLICIES=" in problem.msg and "'public.': public must be true or false" in problem.msg
    with pytest.raises(SystemCheckError, match=r"django_sse_push\.E012"):
        call_command("check")


def test_a_missing_table_is_named_too(settings: Settings, tmp_path: Path) -> None:
    settings.SSE_CHANNEL_POLICIES = str(tmp_path / "nowhere.json")
    (problem,) = check_policies()
    assert (problem.id, "cannot read it" in problem.msg) == ("django_sse_push.E012", True)


def test_a_service_started_with_another_table_fails_the_deploy_check(
    table_file: Path, redis_server: RedisServer, settings: Settings, tmp_path: Path
) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"public.": {"public": true}}')
    env = {"SSE_KEY_PREFIX": settings.SSE_KEY_PREFIX}
    service = SseService(tmp_path / "sse", redis_server.url, free_port(), env=env)
    (tmp_path / "sse").mkdir()
    for table, expected in [(other, ["django_sse_push.E013"]), (table_file, [])]:
        service.env["SSE_CHANNEL_POLICIES"] = str(table)
        service.start()
        service.stop()
        assert [problem.id for problem in check_policies_agree()] == expected
