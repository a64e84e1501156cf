"""The policy table per channel prefix: parsing, which policy a channel takes, and `rewind=N`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sse_service.policies import (
    Policy,
    PolicyError,
    Presence,
    RewindError,
    default_table,
    load_table,
    parse_table,
    rewind_counts,
)
from sse_service.settings import Settings, SettingsError

TABLE = """{
  "": {"rewind_max": 5},
  "public.": {"public": true, "rewind_max": 50, "presence": "who"},
  "public.room.": {"public": true, "join_leave": true, "join_leave_max_members": 3}
}"""


@pytest.mark.parametrize(
    ("channel", "public"),
    [("public.news", True), ("public.", True), ("public", False), ("publicity", False), ("user.1", False)],
)
def test_the_default_table_makes_only_the_public_prefixes_public(channel: str, public: bool) -> None:
    assert default_table(["public."]).is_public(channel) is public


def test_the_longest_prefix_wins_and_unnamed_fields_take_the_defaults_entry() -> None:
    table = parse_table(TABLE)
    assert table.for_channel("public.room.7") == Policy(
        public=True, rewind_max=5, join_leave=True, join_leave_max_members=3
    )
    assert table.for_channel("public.board").presence is Presence.WHO
    assert table.for_channel("user.1") == Policy(rewind_max=5)


def test_the_canonical_form_does_not_depend_on_spelling_or_order() -> None:
    reordered = '{"public.room.": {"join_leave_max_members": 3, "join_leave": true, "public": true},'
    reordered += '"public.": {"presence": "who", "public": true, "rewind_max": 50}, "": {"rewind_max": 5}}'
    assert parse_table(reordered).canonical() == parse_table(TABLE).canonical()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "must be a JSON object"),
        ("{", "not JSON"),
        ('{"public.": {"pubic": true}}', "'public.': unknown field 'pubic'"),
        ('{"public.": {"history": 0}}', "'public.': history must be a whole number of at least 1"),
        ('{"public.": {"rewind_max": true}}', "rewind_max must be a whole number"),
        ('{"public.": {"presence": "all"}}', "presence must be one of count, who"),
        ('{".x": {}}', "'.x' cannot start a channel name"),
        ('{"public.": 3}', "the policy must be a JSON object"),
    ],
)
def test_a_table_that_does_not_parse_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_table(text)


def test_the_service_refuses_to_start_on_a_table_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "policies.json"
    path.write_text('{"public.": {"rewind": 5}}')
    with pytest.raises(SettingsError, match=r"SSE_CHANNEL_POLICIES=.* unknown field 'rewind'"):
        Settings.from_env({"SSE_CHANNEL_POLICIES": str(path)})
    with pytest.raises(SettingsError, match=r"SSE_CHANNEL_POLICIES=.* cannot read"):
        Settings.from_env({"SSE_CHANNEL_POLICIES": str(tmp_path / "missing.json")})


def test_public_prefixes_and_a_table_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policies.json"
    path.write_text(TABLE)
    assert Settings.from_env({"SSE_CHANNEL_POLICIES": str(path)}).policies == load_table(str(path))
    with pytest.raises(SettingsError, match="SSE_PUBLIC_PREFIXES and SSE_CHANNEL_POLICIES are both set"):
        Settings.from_env({"SSE_CHANNEL_POLICIES": str(path), "SSE_PUBLIC_PREFIXES": "news."})


def test_rewind_is_capped_per_channel_by_its_prefix() -> None:
    table = parse_table(TABLE)
    assert rewind_counts("20", ["public.board", "user.1"], table) == {"public.board": 20, "user.1": 5}
    assert rewind_counts("0", ["public.board"], table) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ten", "rewind must be a whole number of events, got 'ten'"),
        ("-1", "got '-1'"),
        ("1e3", "got '1e3'"),
        ("٣", "got '٣'"),
        ("99999999999", "got '99999999999'"),
        ("51", "rewind=51 is over the maximum of 50 for these channels"),
    ],
)
def test_a_rewind_that_is_not_a_count_or_over_the_maximum_is_refused(raw: str, message: str) -> None:
    with pytest.raises(RewindError, match=message):
        rewind_counts(raw, ["public.board", "user.1"], parse_table(TABLE))


def test_uvicorn_stops_at_start_naming_a_table_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "policies.json"
    path.write_text('{"public.": {"public": "yes"}}')
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "sse_service.app:create_app", "--port", "0"],
        env={**os.environ, "SSE_CHANNEL_POLICIES": str(path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert (
        f"sse_service: invalid configuration: SSE_CHANNEL_POLICIES='{path}' is invalid: "
        "'public.': public must be true or false"
    ) in result.stderr
