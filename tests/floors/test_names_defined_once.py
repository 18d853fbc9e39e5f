"""Redis key names and record formats are defined once, in Python (storage/keys.py and
storage/records.py); the Lua scripts build them through the generated prelude only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from editq import telemetry
from editq.storage.records import Entry, Kind, Slot, UsageField

LUA = sorted((Path(__file__).resolve().parents[2] / "storage" / "lua").glob("*.lua"))
#: What a script spelling a key or a record itself looks like.
RAW = {
    "key from the prefix": re.compile(r"\bP\s*\.\."),
    "key suffix": re.compile(r"\.\.\s*':\w"),
    "schedule entry": re.compile(r"'(retry|evt|dlv|out)\|"),
    "record separator": re.compile(r"\.\.\s*'[|/]"),
    "queue lane": re.compile(r"and '1' or '0'"),
}


def _code(line: str) -> str:
    return line.split("--", 1)[0]


def test_the_lua_files_are_found() -> None:
    assert len(LUA) > 10


@pytest.mark.parametrize("path", LUA, ids=lambda p: p.name)
def test_no_lua_file_spells_a_key_or_record(path: Path) -> None:
    offenders = [
        f"{path.name}:{number}: {what}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for what, pattern in RAW.items()
        if pattern.search(_code(line))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("member", "entry"),
    [
        ("retry|acme|j1", Entry.retry("acme", "j1")),
        ("evt|acme|j1|edit.succeeded", Entry(Kind.EVENT, "acme", "j1", event="edit.succeeded")),
        ("dlv|d1", Entry.delivery("d1")),
        ("out|acme|j1", Entry(Kind.OUTPUTS, "acme", "j1")),
    ],
)
def test_entries_parse_and_format_both_ways(member: str, entry: Entry) -> None:
    assert Entry.parse(member) == entry
    assert entry.format() == member


@pytest.mark.parametrize("member", ["", "nope|a|b", "retry|acme", "evt|acme|j1", "dlv|", "retry||j1"])
def test_malformed_entries_parse_to_none(member: str) -> None:
    assert Entry.parse(member) is None


def test_slots_and_usage_fields_round_trip() -> None:
    assert Slot.parse("acme/j1") == Slot("acme", "j1")
    assert Slot("acme", "j1").format() == "acme/j1"
    assert UsageField.parse("gpt-image-1|spent") == UsageField("gpt-image-1", "spent")
    assert UsageField("gpt-image-1", "settled").format() == "gpt-image-1|settled"


def test_every_metric_a_script_records_is_defined_with_its_labels() -> None:
    """The Lua helpers skip a metric Python does not define (a script must not fail halfway), so
    the names and label counts the scripts use are checked here instead."""
    call = re.compile(r"(count_metric|observe_metric)\('(\w+)', [^,]+((?:, [^,)]+(?:\([^)]*\))?)*)\)")
    found = []
    for path in LUA:
        for line in path.read_text().splitlines():
            for helper, name, labels in call.findall(_code(line)):
                family = telemetry.BY_NAME.get(name)
                assert family is not None, f"{path.name}: {name}"
                kind = telemetry.Kind.HISTOGRAM if helper == "observe_metric" else telemetry.Kind.COUNTER
                assert family.kind is kind, name
                assert labels.count(", ") == len(family.labels), f"{path.name}: {line.strip()}"
                found.append(name)
    assert set(found) >= {"editq_jobs_finished", "editq_job_queue_seconds", "editq_cost_usd", "editq_retries"}
