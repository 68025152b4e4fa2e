"""The backups' names and their retention rule: the contract between the chart's backup.py
(which applies it after each backup) and saasodoo's control plane (which lists and prunes with
it); the control plane imports this very file (``saasodoo/backups/retention.py`` is a symlink
to it), so both sides decide the same way.

Standard library only, Python 3.10 (it runs in the Odoo image beside backup.py). A backup is
``<stamp>-<kind>.zip`` (stamp ``%Y%m%dT%H%M%SZ``, UTC; kind one of ``KINDS``) with its manifest
``<same>.json``, written last.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

KINDS = ("scheduled", "on-demand", "pre-update", "final")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
NAME_RE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<kind>[a-z-]+)\.zip$")
UTC = datetime.timezone.utc  # datetime.UTC is Python 3.11+; odoo:17.0 runs 3.10


@dataclass(frozen=True)
class Policy:
    """How many backups to keep. Scheduled backups: the newest of each of the last `daily`
    days, `weekly` ISO weeks and `monthly` months that have backups (borg's rules: a backup
    kept by an earlier rule does not count for a later one). Backups a person asked for
    (`on-demand`) follow their own rule, apart from the scheduled ones: the newest
    `on_demand` of them taken within the last `on_demand_days` days (0: no age limit), so a
    second one never pushes out the first. Plus the newest `pre_update` pre-update backups.
    `final` backups are never pruned."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 3
    pre_update: int = 3
    on_demand: int = 5
    on_demand_days: int = 30


@dataclass(frozen=True)
class Entry:
    """A stored backup as retention sees it."""

    name: str
    timestamp: datetime.datetime
    kind: str


def name_of(moment: datetime.datetime, kind: str) -> str:
    """The zip's base name of a backup of ``kind`` started at ``moment`` (UTC)."""
    return f"{moment.strftime(STAMP_FORMAT)}-{kind}.zip"


def free_moment(
    names: Callable[[], Iterable[str]],
    kind: str,
    now: datetime.datetime,
    tries: int = 5,
) -> datetime.datetime:
    """The moment a new backup of ``kind`` is named by (``name_of``): ``now``, or when the
    name of its second is stored already (``names()``: the zips and manifests stored; an
    import or another backup of that second) the next second, waited for, at most ``tries``
    times; then the last moment tried (the caller refuses a name still taken: never
    overwritten). Names are seconds, so two backups of one tenant in one second would
    otherwise share one."""
    for _ in range(tries):
        name = name_of(now, kind)
        if {name, name + ".json"}.isdisjoint(names()):
            return now
        time.sleep(1.0 - now.microsecond / 1e6 + 0.01)
        now = datetime.datetime.now(UTC)
    return now


def parse_name(name: str) -> Entry | None:
    """The Entry of a zip's base name `<stamp>-<kind>.zip`; None for anything else."""
    match = NAME_RE.match(name)
    if not match or match["kind"] not in KINDS:
        return None
    stamp = datetime.datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    return Entry(name, stamp, match["kind"])


def retention(
    entries: Iterable[Entry], policy: Policy, now: datetime.datetime | None = None
) -> dict[str, str]:
    """Which backups to keep, each with the rule that keeps it (final, pre-update,
    on-demand, daily, weekly, monthly); every other one may go. `now` (UTC; default: the
    current time) is what the on-demand backups' age is measured from."""
    now = now or datetime.datetime.now(UTC)
    ordered = sorted(entries, key=lambda e: (e.timestamp, e.name), reverse=True)
    keep: dict[str, str] = {}
    for entry in ordered:
        if entry.kind == "final":
            keep[entry.name] = "final"
    pre = [e for e in ordered if e.kind == "pre-update"]
    for entry in pre[: max(policy.pre_update, 0)]:
        keep[entry.name] = "pre-update"
    on_demand = [e for e in ordered if e.kind == "on-demand"]
    if policy.on_demand_days > 0:
        oldest = now - datetime.timedelta(days=policy.on_demand_days)
        on_demand = [e for e in on_demand if e.timestamp >= oldest]
    for entry in on_demand[: max(policy.on_demand, 0)]:
        keep[entry.name] = "on-demand"
    regular = [e for e in ordered if e.kind == "scheduled"]
    rules: list[tuple[str, int, Any]] = [
        ("daily", policy.daily, lambda t: t.date()),
        ("weekly", policy.weekly, lambda t: t.isocalendar()[:2]),
        ("monthly", policy.monthly, lambda t: (t.year, t.month)),
    ]
    for rule, count, period in rules:
        # borg's prune_split: the newest backup of each period, newest periods first; one
        # already kept by an earlier rule covers its period without counting for this rule.
        last: Any = None
        kept = 0
        for entry in regular:
            if kept >= count:
                break
            key = period(entry.timestamp)
            if key == last:
                continue
            last = key
            if entry.name not in keep:
                keep[entry.name] = rule
                kept += 1
    return keep
