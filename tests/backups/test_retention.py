"""The retention decision (the chart's files/retention.py, imported by saasodoo): pure,
table-tested; and the Job saasodoo makes from a backup CronJob."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from saasodoo.adapters.storage import DirectoryStore
from saasodoo.backups import (
    Entry,
    Policy,
    job_from_cronjob,
    list_store,
    parse_name,
    prune_store,
    retention,
)

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, 3, 17, tzinfo=UTC)  # a Thursday


def entry(day: int, kind: str = "scheduled", hour: int = 3) -> Entry:
    stamp = START + timedelta(days=day, hours=hour - 3)
    return Entry(f"{stamp:%Y%m%dT%H%M%SZ}-{kind}.zip", stamp, kind)


def series(days: int = 100) -> list[Entry]:
    return [entry(d) for d in range(days)]


def test_100_daily_backups_keep_exactly_7_daily_4_weekly_3_monthly() -> None:
    backups = series(100)  # 2026-01-01 .. 2026-04-10
    keep = retention(backups, Policy(daily=7, weekly=4, monthly=3))
    assert Counter(keep.values()) == {"daily": 7, "weekly": 4, "monthly": 3}
    by_rule = {rule: sorted(n for n, r in keep.items() if r == rule) for rule in set(keep.values())}
    # Daily: the last 7 days.
    assert by_rule["daily"] == sorted(e.name for e in backups[-7:])
    # Weekly: the last backup (Sunday) of each of the 4 ISO weeks before those.
    weekly = [parse_name(n) for n in by_rule["weekly"]]
    assert all(w is not None and w.timestamp.isoweekday() == 7 for w in weekly)
    assert [w.timestamp.date().isoformat() for w in weekly if w] == [
        "2026-03-08", "2026-03-15", "2026-03-22", "2026-03-29",
    ]  # fmt: skip
    # Monthly: the last day of each month not yet covered (April is, by the daily ones).
    assert [n[:8] for n in by_rule["monthly"]] == ["20260131", "20260228", "20260331"]
    assert len(keep) == 14


CASES = [
    pytest.param([], Policy(), {}, id="nothing"),
    pytest.param(
        [entry(0, hour=1), entry(0, hour=9), entry(0, hour=12)],
        Policy(daily=1, weekly=0, monthly=0),
        {entry(0, hour=12).name: "daily"},
        id="newest-of-the-day-only",
    ),
    pytest.param(
        [entry(0), entry(5), entry(40)],
        Policy(daily=7, weekly=4, monthly=3),
        {entry(0).name: "daily", entry(5).name: "daily", entry(40).name: "daily"},
        id="fewer-than-the-policy-all-kept",
    ),
    pytest.param(
        [entry(0), entry(10), entry(20), entry(30)],
        Policy(daily=2, weekly=0, monthly=0),
        {entry(20).name: "daily", entry(30).name: "daily"},
        id="days-with-backups-not-calendar-days",
    ),
    pytest.param(
        [entry(0, "final"), *series(30)[1:]],
        Policy(daily=1, weekly=0, monthly=0, pre_update=0),
        {entry(0, "final").name: "final", entry(29).name: "daily"},
        id="final-never-pruned",
    ),
    pytest.param(
        [entry(d, "pre-update") for d in range(5)] + [entry(9)],
        Policy(daily=1, weekly=0, monthly=0, pre_update=2),
        {
            entry(3, "pre-update").name: "pre-update",
            entry(4, "pre-update").name: "pre-update",
            entry(9).name: "daily",
        },  # fmt: skip
        id="newest-pre-update-ones",
    ),
    pytest.param(
        series(20), Policy(daily=0, weekly=0, monthly=0, pre_update=0), {}, id="keep-nothing"
    ),
    pytest.param(
        series(15),
        Policy(daily=3, weekly=2, monthly=0),
        # Daily: Jan 13-15 (ISO week 3), which covers week 3; weekly: weeks 2 and 1.
        {
            entry(14).name: "daily",
            entry(13).name: "daily",
            entry(12).name: "daily",
            entry(10).name: "weekly",
            entry(3).name: "weekly",
        },  # fmt: skip
        id="weekly-skips-the-week-daily-covers",
    ),
]


@pytest.mark.parametrize(("backups", "policy", "expected"), CASES)
def test_retention_table(backups: list[Entry], policy: Policy, expected: dict[str, str]) -> None:
    # Scheduled, pre-update and final backups do not depend on the time of the pruning.
    assert retention(backups, policy) == expected


def test_an_on_demand_backup_never_pushes_out_the_one_taken_minutes_before() -> None:
    """#22 point 15(a): the daily rule kept one backup per day, so an on-demand backup
    deleted the on-demand backup taken two minutes earlier (the one a customer had just
    restored from). On-demand backups follow their own rule, apart from the scheduled ones."""
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = (
        Entry(f"{t:%Y%m%dT%H%M%SZ}-on-demand.zip", t, "on-demand")
        for t in (now - timedelta(minutes=2), now)
    )
    nightly = [
        Entry(f"{t:%Y%m%dT%H%M%SZ}-scheduled.zip", t, "scheduled")
        for t in (now - timedelta(days=d, hours=1) for d in range(10))
    ]
    keep = retention([*nightly, first, second], Policy())
    assert keep[first.name] == keep[second.name] == "on-demand"
    # The scheduled ones keep their own seven daily slots (the on-demand ones take none).
    assert sum(rule == "daily" for rule in keep.values()) == 7


NOW = START + timedelta(days=60)


def on_demand(days_ago: float) -> Entry:
    stamp = NOW - timedelta(days=days_ago)
    return Entry(f"{stamp:%Y%m%dT%H%M%SZ}-on-demand.zip", stamp, "on-demand")


@pytest.mark.parametrize(
    ("backups", "policy", "expected"),
    [
        pytest.param(
            [on_demand(d / 24) for d in range(8)],
            Policy(on_demand=5, on_demand_days=30),
            {on_demand(d / 24).name: "on-demand" for d in range(5)},
            id="the-newest-count-of-them",
        ),
        pytest.param(
            [on_demand(1), on_demand(29), on_demand(31), on_demand(90)],
            Policy(on_demand=5, on_demand_days=30),
            {on_demand(1).name: "on-demand", on_demand(29).name: "on-demand"},
            id="none-older-than-the-age",
        ),
        pytest.param(
            [on_demand(1), on_demand(400)],
            Policy(on_demand=5, on_demand_days=0),
            {on_demand(1).name: "on-demand", on_demand(400).name: "on-demand"},
            id="age-0-no-age-limit",
        ),
        pytest.param(
            [on_demand(0), entry(59, hour=1)],
            Policy(daily=1, weekly=0, monthly=0, on_demand=0),
            {entry(59, hour=1).name: "daily"},
            id="count-0-none-and-the-scheduled-keep-their-slot",
        ),
    ],
)
def test_on_demand_rule(backups: list[Entry], policy: Policy, expected: dict[str, str]) -> None:
    assert retention(backups, policy, NOW) == expected


def test_names_round_trip_and_strangers_ignored() -> None:
    parsed = parse_name("20260102T031700Z-pre-update.zip")
    assert parsed is not None and parsed.kind == "pre-update"
    assert parsed.timestamp == datetime(2026, 1, 2, 3, 17, tzinfo=UTC)
    for bad in ("20260102T031700Z-weird.zip", "odoo_20260102T031700Z.zip", "x.zip.json"):
        assert parse_name(bad) is None


def test_prune_store_deletes_what_retention_drops_manifest_first(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    for e in series(100):
        store.write(e.name, b"zip")
        store.write(e.name + ".json", b'{"kind": "scheduled", "tenant": "acme"}')
    store.write(entry(200).name, b"zip without manifest: incomplete, never counted")

    dry = prune_store(store, Policy(), dry_run=True)
    assert len(dry.deleted) == 86 and len(store.names()) == 201

    done = prune_store(store, Policy())
    assert done.deleted == dry.deleted and len(done.kept) == 14
    assert len(list_store(store)) == 14
    assert len(store.names()) == 14 * 2 + 1


def test_job_from_cronjob_is_what_kubectl_create_job_from_makes() -> None:
    cronjob = {
        "metadata": {"name": "cj", "namespace": "ns", "uid": "u-1"},
        "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "backup", "command": ["x"],
                                     "env": [{"name": "BACKUP_KIND", "value": "scheduled"}]}]},
        }}}},
    }  # fmt: skip
    job = job_from_cronjob(cronjob, "cj-manual-1", purpose="backup", kind="final")
    # Owned, not controlled (#22 point 10): the CronJob's history limits never delete it.
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj", "uid": "u-1"}
    ]
    assert job["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "BACKUP_KIND", "value": "final"}
    ]
    assert (
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"][0][
            "value"
        ]
        == "scheduled"
    )  # the CronJob's own template is untouched
